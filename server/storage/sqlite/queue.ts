/** The embedded queue: deliveries in SQLite, claimed with leases inside short transactions. */
import type Database from 'better-sqlite3'
import { newDeliveryId } from '../../core/ids.ts'
import { takeTurns } from '../../core/turns.ts'
import { SNAPSHOT_PRIORITY, SNAPSHOT_TYPE } from '../../core/snapshot.ts'
import { LIST_LAG_REASON, RETRYABLE_STATUSES, type ClaimOptions, type DeliveryQueue, type EnqueueResult, type NewDelivery, type OrderingMark, type Outcome, type Purged, type QueuedDelivery, type RetryManyFilter, type RetryManyResult } from '../../core/queue.ts'

const iso = (ms: number) => new Date(ms).toISOString()

const GROUP_COMMIT_WINDOW_MS = 1

interface PendingEnqueue {
  delivery: NewDelivery
  resolve: (result: EnqueueResult) => void
  reject: (err: unknown) => void
}

/**
 * The embedded queue. Enqueues arriving within about a millisecond of each other are committed in
 * one transaction (group commit) with a synced WAL: every caller learns its outcome only after that
 * commit, and concurrent intake shares one fsync instead of paying one each. Claims and outcomes
 * commit without their own fsync: a power cut can make a delivery run again (its Kit calls are
 * idempotent in effect), never lose one.
 */
export class SqliteQueue implements DeliveryQueue {
  private batch: PendingEnqueue[] = []
  private readonly insertEvent: Database.Statement
  private readonly insertDelivery: Database.Statement
  private readonly waitingCommunities: Database.Statement
  private readonly claimable: Database.Statement
  private readonly lease: Database.Statement
  private readonly settleStmt: Database.Statement
  private readonly nextDueStmt: Database.Statement
  private readonly expediteStmt: Database.Statement
  private readonly markStmt: Database.Statement
  private readonly markOfStmt: Database.Statement
  private readonly settleTx: (seq: number, owner: string, outcome: Outcome, now: number) => boolean
  private readonly enqueueTx: (batch: NewDelivery[]) => EnqueueResult[]
  private readonly claimTx: (o: ClaimOptions) => QueuedDelivery[]
  private readonly purgeTx: (before: string, limit: number) => Purged
  private readonly retryManyTx: (communityId: string, filter: RetryManyFilter, limit: number, now: number) => RetryManyResult

  constructor(private readonly sqlite: Database.Database) {
    this.insertEvent = sqlite.prepare(
      `INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
       VALUES (@communityId, @eventId, @eventType, @memberId, @memberEmail, @eventTime, @payload, @receivedAt)
       ON CONFLICT DO NOTHING`,
    )
    this.insertDelivery = sqlite.prepare(
      `INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status,
         last_error, reason, next_attempt_at, received_at, created_at, updated_at, priority)
       VALUES (@id, @communityId, @eventId, @eventType, @memberId, @memberEmail, @eventTime, @status,
         @lastError, @reason, @receivedAt, @receivedAt, @createdAt, @createdAt,
         CASE WHEN @eventType = @snapshotType THEN @snapshotPriority ELSE 0 END)`,
    )
    // Communities with waiting work, stepping along deliveries_claim_idx from one community to the
    // next (one index probe each), whatever the size of their backlogs.
    this.waitingCommunities = sqlite.prepare(
      `WITH RECURSIVE waiting(id) AS (
         SELECT (SELECT community_id FROM deliveries INDEXED BY deliveries_claim_idx
                  WHERE status IN ('pending', 'retrying') ORDER BY community_id LIMIT 1)
         UNION ALL
         SELECT (SELECT community_id FROM deliveries INDEXED BY deliveries_claim_idx
                  WHERE status IN ('pending', 'retrying') AND community_id > waiting.id ORDER BY community_id LIMIT 1)
           FROM waiting WHERE waiting.id IS NOT NULL
       )
       SELECT id FROM waiting WHERE id IS NOT NULL AND id NOT IN (SELECT value FROM json_each(@exclude))`,
    )
    // One community's claimable work in its order, walking deliveries_claim_idx: live events
    // (priority 0) before snapshots (priority 1), then by due time. A member's live event waits
    // only for that member's earlier live events; a snapshot waits for every earlier one, so a
    // sync never holds up a live event.
    this.claimable = sqlite.prepare(
      `SELECT d.seq, d.id, d.community_id AS communityId, d.event_id AS eventId, d.event_type AS eventType,
              d.member_id AS memberId, d.member_email AS memberEmail, d.event_time AS eventTime,
              d.attempts, d.kit_requests AS kitRequests, d.received_at AS receivedAt, e.payload
         FROM deliveries d INDEXED BY deliveries_claim_idx
         JOIN events e ON e.community_id = d.community_id AND e.id = d.event_id
        WHERE d.community_id = @communityId
          AND d.status IN ('pending', 'retrying')
          AND d.next_attempt_at <= @now
          AND (d.lease_until IS NULL OR d.lease_until < @now)
          AND NOT EXISTS (
                SELECT 1 FROM deliveries o
                 WHERE o.community_id = d.community_id AND o.member_id = d.member_id AND o.seq <> d.seq
                   AND ((o.status IN ('pending', 'retrying', 'held') AND o.priority <= d.priority
                         AND (o.event_time < d.event_time OR (o.event_time = d.event_time AND o.seq < d.seq)))
                        OR o.lease_until >= @now))
        ORDER BY d.priority, d.next_attempt_at, d.seq
        LIMIT @limit`,
    )
    this.lease = sqlite.prepare(
      `UPDATE deliveries SET lease_owner = @owner, lease_until = @until
        WHERE seq = @seq AND (lease_until IS NULL OR lease_until < @now)`,
    )
    this.settleStmt = sqlite.prepare(
      `UPDATE deliveries
          SET status = @status, last_error = @lastError, reason = @reason, steps = @steps,
              attempts = attempts + @attempted, kit_requests = kit_requests + @kitRequests,
              next_attempt_at = @nextAttemptAt, lease_owner = NULL, lease_until = NULL, updated_at = @updatedAt
        WHERE seq = @seq AND lease_owner = @owner`,
    )

    // `+community_id` keeps the planner on the ready index: only waiting rows are scanned, never history.
    this.expediteStmt = sqlite.prepare(
      `UPDATE deliveries SET next_attempt_at = @now, updated_at = @updatedAt
        WHERE status IN ('pending', 'retrying') AND status = 'retrying'
          AND next_attempt_at > @now AND +community_id = @communityId
          AND (reason IS NULL OR reason <> @listLag)`,
    )
    // The mark belongs to the settled delivery's community, read from its row.
    this.markStmt = sqlite.prepare(
      `INSERT INTO ordering_marks (community_id, scope, event_time, event_id)
       SELECT community_id, @scope, @eventTime, @eventId FROM deliveries WHERE seq = @seq
       ON CONFLICT (community_id, scope) DO UPDATE SET event_time = excluded.event_time, event_id = excluded.event_id`,
    )
    this.markOfStmt = sqlite.prepare(
      `SELECT scope, event_time AS eventTime, event_id AS eventId FROM ordering_marks
        WHERE community_id = ? AND scope IN (SELECT value FROM json_each(?))`,
    )
    this.nextDueStmt = sqlite.prepare(`SELECT min(next_attempt_at) AS t FROM deliveries WHERE status IN ('pending', 'retrying')`)
    this.settleTx = sqlite.transaction((seq: number, owner: string, outcome: Outcome, now: number) => {
      const changed = this.settleStmt.run({
        seq,
        owner,
        status: outcome.status,
        lastError: outcome.lastError,
        reason: outcome.reason ?? null,
        steps: JSON.stringify(outcome.steps ?? []),
        attempted: outcome.status !== 'pending' && (outcome.kitRequests > 0 || outcome.status !== 'skipped') ? 1 : 0,
        kitRequests: outcome.kitRequests,
        nextAttemptAt: outcome.nextAttemptAt ?? now,
        updatedAt: iso(now),
      }).changes
      if (changed === 1) for (const mark of outcome.marks ?? []) this.markStmt.run({ seq, ...mark })
      return changed === 1
    })

    this.enqueueTx = sqlite.transaction((batch: NewDelivery[]) =>
      batch.map((d) => {
        if (this.insertEvent.run(d).changes === 0) return { accepted: false, deliveryId: null }
        const id = newDeliveryId()
        this.insertDelivery.run({
          ...d,
          id,
          status: d.skippedReason ? 'skipped' : 'pending',
          lastError: d.skippedReason ?? null,
          reason: d.skippedReason ? (d.reason ?? null) : null,
          createdAt: iso(d.receivedAt),
          snapshotType: SNAPSHOT_TYPE,
          snapshotPriority: SNAPSHOT_PRIORITY,
        })
        return { accepted: true, deliveryId: id }
      }),
    )

    // Each community offers its first deliveries (as many as the claim may take), and the
    // communities take turns (see takeTurns).
    this.claimTx = sqlite.transaction((o: ClaimOptions) => {
      const communities = this.waitingCommunities.all({ exclude: JSON.stringify(o.exclude) }) as { id: string }[]
      const candidates = communities.flatMap(({ id }) => this.claimable.all({ communityId: id, now: o.now, limit: o.limit }) as QueuedDelivery[])
      return takeTurns(candidates, o.limit, o.turns).filter(
        (row) => this.lease.run({ owner: o.owner, until: o.now + o.leaseMs, seq: row.seq, now: o.now }).changes === 1,
      )
    })

    // The status list matches deliveries_finished_idx, so a batch reads only finished rows, oldest first.
    const finishedBefore = sqlite.prepare(
      `SELECT seq, community_id AS communityId, event_id AS eventId FROM deliveries
        WHERE status IN ('succeeded', 'failed', 'skipped') AND updated_at < @before
        ORDER BY updated_at LIMIT @limit`,
    )
    const deleteEvent = sqlite.prepare('DELETE FROM events WHERE community_id = @communityId AND id = @eventId')
    const deleteDelivery = sqlite.prepare('DELETE FROM deliveries WHERE seq = @seq')
    // Oldest events first, so a member's earlier events are queued before (or with) later ones.
    const matching = `FROM deliveries WHERE community_id = @communityId AND status = @status
        AND (@reason IS NULL OR reason = @reason)`
    const requeue = sqlite.prepare(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = @now, updated_at = @updatedAt, received_at = @now
        WHERE seq IN (SELECT seq ${matching} ORDER BY event_time, seq LIMIT @limit)`,
    )
    const countMatching = sqlite.prepare(`SELECT count(*) AS n ${matching}`)
    this.retryManyTx = sqlite.transaction((communityId: string, filter: RetryManyFilter, limit: number, now: number) => {
      const params = { communityId, status: filter.status, reason: filter.reason ?? null }
      const queued = requeue.run({ ...params, limit, now, updatedAt: iso(now) }).changes
      const { n } = countMatching.get(params) as { n: number }
      return { queued, remaining: n }
    })

    this.purgeTx = sqlite.transaction((before: string, limit: number) => {
      const rows = finishedBefore.all({ before, limit }) as { seq: number; communityId: string; eventId: string }[]
      let events = 0
      for (const row of rows) {
        events += deleteEvent.run(row).changes
        deleteDelivery.run(row)
      }
      return { deliveries: rows.length, events }
    })
  }

  enqueue(delivery: NewDelivery): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      // A window of about a millisecond gathers the events arriving together into one commit.
      if (this.batch.length === 0) setTimeout(() => this.flush(), GROUP_COMMIT_WINDOW_MS)
      this.batch.push({ delivery, resolve, reject })
    })
  }

  private flush(): void {
    const batch = this.batch
    this.batch = []
    let results: EnqueueResult[]
    try {
      // An accepted event must survive a power cut, not just a crash: this commit syncs the WAL.
      this.sqlite.pragma('synchronous = FULL')
      results = this.enqueueTx(batch.map((p) => p.delivery))
    } catch (err) {
      for (const p of batch) p.reject(err)
      return
    } finally {
      this.sqlite.pragma('synchronous = NORMAL')
    }
    batch.forEach((p, i) => p.resolve(results[i] as EnqueueResult))
  }

  async claim(options: ClaimOptions): Promise<QueuedDelivery[]> {
    return this.claimTx(options)
  }

  async settle(seq: number, owner: string, outcome: Outcome): Promise<boolean> {
    return this.settleTx(seq, owner, outcome, Date.now())
  }

  async marks(communityId: string, scopes: string[]): Promise<Map<string, OrderingMark>> {
    const rows = this.markOfStmt.all(communityId, JSON.stringify(scopes)) as OrderingMark[]
    return new Map(rows.map((row) => [row.scope, row]))
  }

  async recover(): Promise<number> {
    return this.sqlite.prepare('UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL').run().changes
  }

  async release(owner: string): Promise<number> {
    return this.sqlite
      .prepare('UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?')
      .run(owner).changes
  }

  async resumeHeld(communityId: string, now: number): Promise<number> {
    return this.sqlite
      .prepare(
        `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
          WHERE community_id = ? AND status = 'held'
            AND (sync_id IS NULL OR sync_id IN (SELECT id FROM syncs WHERE status = 'running'))`,
      )
      .run(now, iso(now), communityId).changes
  }

  async expediteRetries(communityId: string, now: number): Promise<number> {
    return this.expediteStmt.run({ communityId, now, updatedAt: iso(now), listLag: LIST_LAG_REASON }).changes
  }

  async retry(communityId: string, deliveryId: string, now: number): Promise<{ result: 'queued' | 'not_found' } | { result: 'not_retryable'; status: string }> {
    const row = this.sqlite
      .prepare('SELECT status FROM deliveries WHERE community_id = ? AND id = ?')
      .get(communityId, deliveryId) as { status: string } | undefined
    if (!row) return { result: 'not_found' }
    if (!(RETRYABLE_STATUSES as readonly string[]).includes(row.status)) return { result: 'not_retryable', status: row.status }
    this.sqlite
      .prepare(
        `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?, received_at = ?
          WHERE community_id = ? AND id = ? AND status IN ('failed', 'skipped')`,
      )
      .run(now, iso(now), now, communityId, deliveryId)
    return { result: 'queued' }
  }

  async retryMany(communityId: string, filter: RetryManyFilter, limit: number, now: number): Promise<RetryManyResult> {
    return this.retryManyTx(communityId, filter, limit, now)
  }

  async purgeFinished(before: number, limit: number): Promise<Purged> {
    return this.purgeTx(iso(before), limit)
  }

  async nextDueAt(): Promise<number | null> {
    return (this.nextDueStmt.get() as { t: number | null }).t
  }

  async depth(): Promise<Record<string, number>> {
    const rows = this.sqlite
      .prepare(`SELECT status, count(*) AS n FROM deliveries WHERE status IN ('pending', 'retrying', 'held') GROUP BY status`)
      .all() as { status: string; n: number }[]
    const depth: Record<string, number> = { pending: 0, retrying: 0, held: 0 }
    for (const r of rows) depth[r.status] = r.n
    return depth
  }
}
