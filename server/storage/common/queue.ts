/**
 * What both queues share: group-commit intake and every verb the dialects express alike. A
 * dialect's queue adds how it commits a batch of enqueues, claims, settles and purges (row
 * locking, leases across processes, upserts over arrays).
 */
import { sql, type SQL, type SQLWrapper } from 'drizzle-orm'
import { erasedPayload, personalDataOf, redactor, redactSteps } from '../../core/erasure.ts'
import {
  LIST_LAG_REASON,
  RETRYABLE_STATUSES,
  type ClaimOptions,
  type DeletedMember,
  type DeliveryQueue,
  type EnqueueResult,
  type HeldEvent,
  type NewDelivery,
  type OrderingMark,
  type Outcome,
  type Purged,
  type QueuedDelivery,
  type RetryManyFilter,
  type RetryManyResult,
  type BulkClaimOptions,
} from '../../core/queue.ts'
import { SNAPSHOT_PRIORITY } from '../../core/snapshot.ts'
import type { ReasonCode } from '../../core/reasons.ts'
import type { SqlRunner } from './sql.ts'
import { finishIfDone } from './syncs.ts'
import { iso } from './values.ts'

const GROUP_COMMIT_WINDOW_MS = 1

interface PendingEnqueue {
  delivery: NewDelivery
  resolve: (result: EnqueueResult) => void
  reject: (err: unknown) => void
}

/** Outcomes after which a delivery has nothing left to do. */
export const FINISHED = new Set<Outcome['status']>(['succeeded', 'failed', 'skipped'])

const CLAIM_INDEX = 'deliveries_claim_idx'

/**
 * The claim's first step in both dialects: the recursive `waiting(id)`, communities with waiting
 * work, stepping along deliveries_claim_idx from one to the next (one index probe each), whatever
 * the size of their backlogs. Its last row is NULL.
 */
export function waitingCommunities(run: SqlRunner): SQL {
  const next = (after: SQL) => sql`(SELECT community_id FROM deliveries ${run.indexedBy(CLAIM_INDEX)}
      WHERE status IN ('pending', 'retrying') ${after} ORDER BY community_id LIMIT 1)`
  return sql`WITH RECURSIVE waiting(id) AS (
      SELECT ${next(sql``)}
      UNION ALL
      SELECT ${next(sql`AND community_id > waiting.id`)} FROM waiting WHERE waiting.id IS NOT NULL)`
}

/**
 * One community's claimable work in its order, walking deliveries_claim_idx: live events
 * (priority 0) before snapshots (priority 1), then by due time. A member's live event waits only
 * for that member's earlier live events; a snapshot waits for every earlier one, so a sync never
 * holds up a live event; nothing of a member whose delivery is leased. Rows as `QueuedDelivery`.
 */
export function claimable(
  run: SqlRunner,
  communityId: SQLWrapper,
  now: SQLWrapper | number,
  limit: SQLWrapper | number,
  bulkOnly = false,
): SQL {
  return sql`SELECT d.seq, d.id, d.community_id AS "communityId", d.event_id AS "eventId", d.event_type AS "eventType",
         d.member_id AS "memberId", d.member_email AS "memberEmail", d.event_time AS "eventTime",
         d.attempts, d.kit_requests AS "kitRequests", d.received_at AS "receivedAt", e.payload,
         CASE WHEN d.reason = ${NOT_CONNECTED} THEN 1 ELSE 0 END AS "replay"
    FROM deliveries d ${run.indexedBy(CLAIM_INDEX)}
    JOIN events e ON e.community_id = d.community_id AND e.id = d.event_id
   WHERE d.community_id = ${communityId}
     AND d.status IN ('pending', 'retrying')
     ${bulkOnly ? sql`AND (d.priority = ${SNAPSHOT_PRIORITY} OR d.reason = ${NOT_CONNECTED})` : sql``}
     AND d.next_attempt_at <= ${now}
     AND (d.lease_until IS NULL OR d.lease_until < ${now})
     AND NOT EXISTS (
           SELECT 1 FROM deliveries o
            WHERE o.community_id = d.community_id AND o.member_id = d.member_id AND o.seq <> d.seq
              AND ((o.status IN ('pending', 'retrying', 'held') AND o.priority <= d.priority
                    AND (o.event_time < d.event_time OR (o.event_time = d.event_time AND o.seq < d.seq)))
                   OR o.lease_until >= ${now}))
   ORDER BY d.priority, d.next_attempt_at, d.seq
   LIMIT ${limit}`
}

/**
 * The skip an owner may undo by replaying what was recorded while no Kit account was connected. A
 * replayed delivery keeps this reason until its first attempt settles: claims see it as a replay.
 */
const NOT_CONNECTED: ReasonCode = 'not_connected'

/**
 * A member's `user.deleted` delivery `d` that deleted them (see DeliveryQueue.deletion): settled
 * for good, their newest event, nothing of theirs waiting. The literal event type lets both
 * dialects walk deliveries_deleted_idx.
 */
function settledDeletion(replayableBefore: number): SQL {
  return sql`d.event_type = 'user.deleted'
     AND (d.status = 'succeeded'
          OR (d.status = 'skipped' AND (d.reason IS NULL OR d.reason <> ${NOT_CONNECTED}))
          OR (d.status IN ('failed', 'skipped') AND d.updated_at < ${iso(replayableBefore)}))
     AND NOT EXISTS (
           SELECT 1 FROM deliveries o
            WHERE o.community_id = d.community_id AND o.member_id = d.member_id AND o.seq <> d.seq
              AND (o.status IN ('pending', 'retrying', 'held') OR o.event_time > d.event_time))`
}

interface ScrubRow {
  seq: number
  eventId: string
  eventType: string
  memberEmail: string
  lastError: string | null
  steps: string
  payload: string | null
}

export abstract class QueueStore implements DeliveryQueue {
  private batch: PendingEnqueue[] = []

  /** Read for every delivery processed: rendered once. */
  private readonly marksOf: ReturnType<SqlRunner['prepare']>

  protected constructor(protected readonly run: SqlRunner) {
    this.marksOf = run.prepare(
      sql`SELECT scope, event_time AS "eventTime", event_id AS "eventId" FROM ordering_marks
           WHERE community_id = ${sql.placeholder('communityId')} AND ${run.anyOf(sql`scope`, sql.placeholder('scopes'))}`,
    )
  }

  /** Stores a batch of events and their deliveries in one commit; the first of several with one event id counts. */
  protected abstract commit(batch: NewDelivery[]): Promise<EnqueueResult[]>
  abstract claim(options: ClaimOptions): Promise<QueuedDelivery[]>
  abstract claimBulk(options: BulkClaimOptions): Promise<QueuedDelivery[]>
  abstract settle(seq: number, owner: string, outcome: Outcome): Promise<boolean>
  abstract recover(): Promise<number>

  /**
   * At start: syncs left with nothing to do are finished, should a process have stopped between
   * settling a sync's last delivery and recording the sync as finished.
   */
  protected async finishIdleSyncs(now: number): Promise<void> {
    await this.run.run(finishIfDone(sql`syncs.id`, now))
  }
  abstract purgeFinished(before: number, limit: number): Promise<Purged>

  /**
   * Enqueues arriving within about a millisecond of each other are committed together (group
   * commit), and every caller learns its outcome only after that commit.
   */
  enqueue(delivery: NewDelivery): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      if (this.batch.length === 0) setTimeout(() => void this.flush(), GROUP_COMMIT_WINDOW_MS)
      this.batch.push({ delivery, resolve, reject })
    })
  }

  private async flush(): Promise<void> {
    const batch = this.batch
    this.batch = []
    let results: EnqueueResult[]
    try {
      results = await this.commit(batch.map((p) => p.delivery))
    } catch (err) {
      for (const p of batch) p.reject(err)
      return
    }
    batch.forEach((p, i) => p.resolve(results[i] as EnqueueResult))
  }

  async marks(communityId: string, scopes: string[]): Promise<Map<string, OrderingMark>> {
    const { rows } = await this.marksOf({ communityId, scopes: this.run.list(scopes) })
    return new Map((rows as unknown as OrderingMark[]).map((row) => [row.scope, row]))
  }

  /** Only waiting deliveries are ever leased (settling clears the lease): the indexes on waiting rows serve this. */
  release(owner: string): Promise<number> {
    return this.run.run(
      sql`UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE status IN ('pending', 'retrying') AND lease_owner = ${owner}`,
    )
  }

  resumeHeld(communityId: string, now: number): Promise<number> {
    return this.run.run(
      sql`UPDATE deliveries SET status = 'pending', next_attempt_at = ${now}, updated_at = ${iso(now)}
           WHERE community_id = ${communityId} AND status = 'held'
             AND (sync_id IS NULL OR sync_id IN (SELECT id FROM syncs WHERE status = 'running'))`,
    )
  }

  /**
   * Waits for Kit's subscriber list are about time, not Kit being down: they are left as they are
   * (by their reason code). `status IN ('pending', 'retrying')` repeats the partial indexes'
   * condition, so the planner may use them; `status = 'retrying'` is what is meant.
   */
  expediteRetries(communityId: string, now: number): Promise<number> {
    return this.run.run(
      sql`UPDATE deliveries SET next_attempt_at = ${now}, updated_at = ${iso(now)}
           WHERE status IN ('pending', 'retrying') AND status = 'retrying'
             AND next_attempt_at > ${now} AND ${this.run.unindexed(sql`community_id`)} = ${communityId}
             AND (reason IS NULL OR reason <> ${LIST_LAG_REASON})`,
    )
  }

  async retry(
    communityId: string,
    deliveryId: string,
    now: number,
  ): Promise<{ result: 'queued' | 'not_found' } | { result: 'not_retryable'; status: string }> {
    const [row] = await this.run.all<{ status: string }>(
      sql`SELECT status FROM deliveries WHERE community_id = ${communityId} AND id = ${deliveryId}`,
    )
    if (!row) return { result: 'not_found' }
    if (!(RETRYABLE_STATUSES as readonly string[]).includes(row.status)) return { result: 'not_retryable', status: row.status }
    // Guarded by status: a delivery re-queued meanwhile by another instance is left as it is (queued either way).
    await this.run.run(
      sql`UPDATE deliveries SET status = 'pending', next_attempt_at = ${now}, updated_at = ${iso(now)}, received_at = ${now}
           WHERE community_id = ${communityId} AND id = ${deliveryId} AND ${this.run.anyOf(sql`status`, RETRYABLE_STATUSES)}`,
    )
    return { result: 'queued' }
  }

  async retryMany(communityId: string, filter: RetryManyFilter, limit: number, now: number): Promise<RetryManyResult> {
    const reason = filter.reason === undefined ? sql`` : sql`AND reason = ${filter.reason}`
    const matching = sql`FROM deliveries WHERE community_id = ${communityId} AND status = ${filter.status} ${reason}`
    // Oldest events first, so a member's earlier events are queued before (or with) later ones.
    // The outer status check drops rows another instance re-queued while this one waited for them.
    const [requeued, counted] = await this.run.batch([
      sql`UPDATE deliveries SET status = 'pending', next_attempt_at = ${now}, updated_at = ${iso(now)}, received_at = ${now}
           WHERE status = ${filter.status} AND seq IN (SELECT seq ${matching} ORDER BY event_time, seq LIMIT ${limit})`,
      sql`SELECT count(*) AS n ${matching}`,
    ])
    return { queued: requeued?.changes ?? 0, remaining: Number(counted?.rows[0]?.n ?? 0) }
  }

  async deletion(communityId: string, memberId: string, replayableBefore: number): Promise<number | null> {
    const [row] = await this.run.all<{ t: number }>(
      sql`SELECT d.event_time AS t FROM deliveries d
           WHERE d.community_id = ${communityId} AND d.member_id = ${memberId} AND ${settledDeletion(replayableBefore)}
           ORDER BY d.event_time DESC LIMIT 1`,
    )
    return row ? Number(row.t) : null
  }

  async deletedWithPersonalData(replayableBefore: number, limit: number): Promise<DeletedMember[]> {
    const rows = await this.run.all<DeletedMember>(
      sql`SELECT d.community_id AS "communityId", d.member_id AS "memberId", max(d.event_time) AS "deletedAt"
            FROM deliveries d
           WHERE ${settledDeletion(replayableBefore)}
             AND EXISTS (
                   SELECT 1 FROM deliveries s
                    WHERE s.community_id = d.community_id AND s.member_id = d.member_id AND s.event_time <= d.event_time
                      AND s.status IN ('succeeded', 'failed', 'skipped') AND s.member_email <> '')
           GROUP BY d.community_id, d.member_id
           ORDER BY d.community_id, d.member_id
           LIMIT ${limit}`,
    )
    return rows.map((r) => ({ ...r, deletedAt: Number(r.deletedAt) }))
  }

  /**
   * Each delivery's words are blanked where they name the member: the addresses and first names
   * their events carried, and anything shaped like an address. A delivery put back in the queue
   * meanwhile is left alone (its event too); one run in the same transaction per member.
   */
  async scrubMember(communityId: string, memberId: string, upTo: number): Promise<number> {
    const rows = await this.run.all<ScrubRow>(
      sql`SELECT d.seq, d.event_id AS "eventId", d.event_type AS "eventType", d.member_email AS "memberEmail",
                 d.last_error AS "lastError", d.steps, e.payload
            FROM deliveries d
            LEFT JOIN events e ON e.community_id = d.community_id AND e.id = d.event_id
           WHERE d.community_id = ${communityId} AND d.member_id = ${memberId} AND d.event_time <= ${upTo}
             AND d.status IN ('succeeded', 'failed', 'skipped') AND d.member_email <> ''`,
    )
    if (rows.length === 0) return 0
    const emails: string[] = []
    const names: string[] = []
    for (const row of rows) {
      emails.push(row.memberEmail)
      const carried = row.payload === null ? null : personalDataOf(row.payload)
      emails.push(...(carried?.emails ?? []))
      names.push(...(carried?.names ?? []))
    }
    const redact = redactor({ emails, names })
    const ran = await this.run.batch(
      rows.flatMap((row) => [
        sql`UPDATE deliveries SET member_email = '', last_error = ${redact(row.lastError)}, steps = ${redactSteps(row.steps, redact)}
             WHERE seq = ${row.seq} AND status IN ('succeeded', 'failed', 'skipped')`,
        sql`UPDATE events SET member_email = '',
                   payload = ${erasedPayload({ eventId: row.eventId, type: row.eventType, communityId, memberId })}
             WHERE community_id = ${communityId} AND id = ${row.eventId}
               AND EXISTS (SELECT 1 FROM deliveries WHERE seq = ${row.seq} AND member_email = '')`,
      ]),
    )
    return ran.filter((_, i) => i % 2 === 0).reduce((n, r) => n + r.changes, 0)
  }

  recentEvents(communityId: string, types: readonly string[], perType: number): Promise<HeldEvent[]> {
    if (types.length === 0) return Promise.resolve([])
    const newest = types.map(
      (type, i) => sql`SELECT * FROM (SELECT type, member_id AS "memberId", event_time AS "eventTime", payload
           FROM events ${this.run.indexedBy('events_recent_idx')}
          WHERE community_id = ${communityId} AND type = ${type}
          ORDER BY event_time DESC, ${this.run.insertionOrder} DESC LIMIT ${perType}) AS ${sql.raw(`t${i}`)}`,
    )
    return this.run.all<HeldEvent>(sql.join(newest, sql` UNION ALL `))
  }

  async nextDueAt(): Promise<number | null> {
    const [row] = await this.run.all<{ t: number | null }>(
      sql`SELECT min(next_attempt_at) AS t FROM deliveries WHERE status IN ('pending', 'retrying')`,
    )
    return row?.t ?? null
  }

  async depth(): Promise<Record<string, number>> {
    const rows = await this.run.all<{ status: string; n: number }>(
      sql`SELECT status, count(*) AS n FROM deliveries WHERE status IN ('pending', 'retrying', 'held') GROUP BY status`,
    )
    const depth: Record<string, number> = { pending: 0, retrying: 0, held: 0 }
    for (const r of rows) depth[r.status] = r.n
    return depth
  }
}
