/**
 * The shared queue: deliveries in PostgreSQL, claimed by several stateless instances at once.
 * Same semantics as the embedded queue (`../sqlite/queue.ts`); what differs is how claims stay
 * exclusive across processes (row locks, a per-member advisory lock, leases that expire).
 */
import type pg from 'pg'
import { newDeliveryId } from '../../core/ids.ts'
import { takeTurns } from '../../core/turns.ts'
import { SNAPSHOT_PRIORITY, SNAPSHOT_TYPE } from '../../core/snapshot.ts'
import { LIST_LAG_REASON, RETRYABLE_STATUSES, type ClaimOptions, type DeliveryQueue, type EnqueueResult, type NewDelivery, type OrderingMark, type Outcome, type Purged, type QueuedDelivery, type RetryManyFilter, type RetryManyResult } from '../../core/queue.ts'
import { withTransaction } from './transaction.ts'

const iso = (ms: number) => new Date(ms).toISOString()

const GROUP_COMMIT_WINDOW_MS = 1

/**
 * First key of the two-key advisory locks a claim takes per member (the second is a hash of the
 * member). Two-key locks never collide with the one-key migration lock.
 */
const MEMBER_CLAIM_LOCK = 0x4b17_0002

interface PendingEnqueue {
  delivery: NewDelivery
  resolve: (result: EnqueueResult) => void
  reject: (err: unknown) => void
}

/** bigint columns arrive as strings from `pg`; epoch milliseconds and counters fit a double exactly. */
interface ClaimRow {
  seq: string
  id: string
  communityId: string
  eventId: string
  eventType: string
  memberId: string
  memberEmail: string
  eventTime: string
  attempts: string
  kitRequests: string
  receivedAt: string
  payload: string
}

const toQueued = (r: ClaimRow): QueuedDelivery => ({
  seq: Number(r.seq),
  id: r.id,
  communityId: r.communityId,
  eventId: r.eventId,
  eventType: r.eventType,
  memberId: r.memberId,
  memberEmail: r.memberEmail,
  eventTime: Number(r.eventTime),
  attempts: Number(r.attempts),
  kitRequests: Number(r.kitRequests),
  receivedAt: Number(r.receivedAt),
  payload: r.payload,
})

// The rules of the embedded claim: communities with waiting work, stepping along
// deliveries_claim_idx from one to the next, each offering its first claimable deliveries in its
// own order — live events (priority 0) before snapshots (priority 1), then by due time; a member's
// live event waits only for that member's earlier live events, a snapshot for every earlier one;
// nothing of a member whose delivery is leased. The communities then take turns (takeTurns).
// SKIP LOCKED passes over rows another instance is claiming right now instead of waiting for it.
// Each community's rows come out of its LATERAL in its order; an ORDER BY here would be a sort,
// which the claim turns off (see claim()) and which would then cost a JIT compilation per claim.
const CLAIMABLE = `
  WITH RECURSIVE waiting(id) AS (
    (SELECT community_id FROM deliveries WHERE status IN ('pending', 'retrying') ORDER BY community_id LIMIT 1)
    UNION ALL
    SELECT (SELECT d.community_id FROM deliveries d
             WHERE d.status IN ('pending', 'retrying') AND d.community_id > w.id ORDER BY d.community_id LIMIT 1)
      FROM waiting w WHERE w.id IS NOT NULL
  )
  SELECT c.* FROM waiting w
  CROSS JOIN LATERAL (
    SELECT d.seq, d.id, d.community_id AS "communityId", d.event_id AS "eventId", d.event_type AS "eventType",
           d.member_id AS "memberId", d.member_email AS "memberEmail", d.event_time AS "eventTime",
           d.attempts, d.kit_requests AS "kitRequests", d.received_at AS "receivedAt", e.payload
      FROM deliveries d
      JOIN events e ON e.community_id = d.community_id AND e.id = d.event_id
     WHERE d.community_id = w.id
       AND d.status IN ('pending', 'retrying')
       AND d.next_attempt_at <= $1
       AND (d.lease_until IS NULL OR d.lease_until < $1)
       AND NOT EXISTS (
             SELECT 1 FROM deliveries o
              WHERE o.community_id = d.community_id AND o.member_id = d.member_id AND o.seq <> d.seq
                AND ((o.status IN ('pending', 'retrying', 'held') AND o.priority <= d.priority
                      AND (o.event_time < d.event_time OR (o.event_time = d.event_time AND o.seq < d.seq)))
                     OR o.lease_until >= $1))
     ORDER BY d.priority, d.next_attempt_at, d.seq
     LIMIT $3
     FOR UPDATE OF d SKIP LOCKED
  ) c
  WHERE w.id IS NOT NULL AND w.id <> ALL($2::text[])`

// Row locks alone do not keep one member's deliveries apart: a member's earliest snapshot and its
// earliest live event are both claimable at once, and an instance whose snapshot predates another
// instance's lease sees that lease as absent. So each member is also locked for the rest of the
// transaction (try-lock: a member another instance is claiming is simply passed over), and the
// lease is written by a later statement whose snapshot sees every lease committed before the lock.
const LOCK_MEMBERS = `
  SELECT c.seq FROM unnest($1::bigint[], $2::text[], $3::text[]) AS c(seq, community_id, member_id)
   WHERE pg_try_advisory_xact_lock($4, hashtext(c.community_id || '/' || c.member_id))`

const LEASE = `
  UPDATE deliveries d SET lease_owner = $1, lease_until = $2
   WHERE d.seq = ANY($3::bigint[])
     AND (d.lease_until IS NULL OR d.lease_until < $4)
     AND NOT EXISTS (
           SELECT 1 FROM deliveries o
            WHERE o.community_id = d.community_id AND o.member_id = d.member_id AND o.seq <> d.seq
              AND o.lease_until >= $4)
  RETURNING d.seq`

// One statement, so the outcome and its marks commit together, and only if the lease is still ours.
const SETTLE = `
  WITH settled AS (
    UPDATE deliveries
       SET status = $3, last_error = $4, steps = $5,
           attempts = attempts + $6, kit_requests = kit_requests + $7,
           next_attempt_at = $8, lease_owner = NULL, lease_until = NULL, updated_at = $9, reason = $13
     WHERE seq = $1 AND lease_owner = $2
    RETURNING community_id
  ), marked AS (
    INSERT INTO ordering_marks (community_id, scope, event_time, event_id)
    SELECT s.community_id, m.scope, m.event_time, m.event_id
      FROM settled s, unnest($10::text[], $11::bigint[], $12::text[]) WITH ORDINALITY AS m(scope, event_time, event_id, n)
     ORDER BY m.n
    ON CONFLICT (community_id, scope) DO UPDATE SET event_time = excluded.event_time, event_id = excluded.event_id
  )
  SELECT count(*)::int AS n FROM settled`

const INSERT_EVENTS = `
  INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
  SELECT c, i, t, m, e, et, p, ra
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[])
         WITH ORDINALITY AS r(c, i, t, m, e, et, p, ra, n)
   ORDER BY n
  ON CONFLICT DO NOTHING
  RETURNING community_id, id`

const INSERT_DELIVERIES = `
  INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status,
    last_error, reason, next_attempt_at, received_at, created_at, updated_at, priority)
  SELECT id, c, ev, t, m, e, et, s, le, rs, ra, ra, ca, ca, CASE WHEN t = $13 THEN $14::bigint ELSE 0 END
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
                $9::text[], $10::bigint[], $11::text[], $12::text[])
         WITH ORDINALITY AS r(id, c, ev, t, m, e, et, s, le, ra, ca, rs, n)
   ORDER BY n`

const eventKey = (d: { communityId: string; eventId: string }) => `${d.communityId}\u0000${d.eventId}`

/**
 * The shared queue. Enqueues arriving within about a millisecond of each other share one
 * transaction (group commit), and every caller learns its outcome only after that commit.
 * A lease is the only claim on a delivery: an instance that dies leaves leases that expire, and
 * any instance claims the delivery again after that.
 */
export class PgQueue implements DeliveryQueue {
  private batch: PendingEnqueue[] = []

  constructor(private readonly pool: pg.Pool) {}

  enqueue(delivery: NewDelivery): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      // A window of about a millisecond gathers the events arriving together into one commit.
      if (this.batch.length === 0) setTimeout(() => void this.flush(), GROUP_COMMIT_WINDOW_MS)
      this.batch.push({ delivery, resolve, reject })
    })
  }

  private async flush(): Promise<void> {
    const batch = this.batch
    this.batch = []
    let results: EnqueueResult[]
    try {
      results = await withTransaction(this.pool, (client) => this.insertBatch(client, batch.map((p) => p.delivery)))
    } catch (err) {
      for (const p of batch) p.reject(err)
      return
    }
    batch.forEach((p, i) => p.resolve(results[i] as EnqueueResult))
  }

  private async insertBatch(client: pg.PoolClient, batch: NewDelivery[]): Promise<EnqueueResult[]> {
    // The first of several calls with one event id is the one that counts, as if they ran in turn.
    const firsts = new Map<string, number>()
    batch.forEach((d, i) => {
      if (!firsts.has(eventKey(d))) firsts.set(eventKey(d), i)
    })
    // Instances inserting overlapping ids wait for each other's uncommitted rows; inserting in one
    // agreed order (sorted keys) means they wait in line instead of deadlocking.
    const events = [...firsts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, i]) => batch[i] as NewDelivery)
    const { rows } = await client.query<{ community_id: string; id: string }>(INSERT_EVENTS, [
      events.map((d) => d.communityId),
      events.map((d) => d.eventId),
      events.map((d) => d.eventType),
      events.map((d) => d.memberId),
      events.map((d) => d.memberEmail),
      events.map((d) => d.eventTime),
      events.map((d) => d.payload),
      events.map((d) => d.receivedAt),
    ])
    const inserted = new Set(rows.map((r) => eventKey({ communityId: r.community_id, eventId: r.id })))
    const results: EnqueueResult[] = batch.map((d, i) => {
      const key = eventKey(d)
      if (firsts.get(key) !== i || !inserted.has(key)) return { accepted: false, deliveryId: null }
      return { accepted: true, deliveryId: newDeliveryId() }
    })
    // Deliveries in arrival order, so their seq follows it.
    const accepted = batch.flatMap((d, i) => {
      const id = results[i]?.deliveryId
      return id ? [{ d, id }] : []
    })
    if (accepted.length > 0) {
      await client.query(INSERT_DELIVERIES, [
        accepted.map((a) => a.id),
        accepted.map((a) => a.d.communityId),
        accepted.map((a) => a.d.eventId),
        accepted.map((a) => a.d.eventType),
        accepted.map((a) => a.d.memberId),
        accepted.map((a) => a.d.memberEmail),
        accepted.map((a) => a.d.eventTime),
        accepted.map((a) => (a.d.skippedReason ? 'skipped' : 'pending')),
        accepted.map((a) => a.d.skippedReason ?? null),
        accepted.map((a) => a.d.receivedAt),
        accepted.map((a) => iso(a.d.receivedAt)),
        accepted.map((a) => (a.d.skippedReason ? (a.d.reason ?? null) : null)),
        SNAPSHOT_TYPE,
        SNAPSHOT_PRIORITY,
      ])
    }
    return results
  }

  async claim(o: ClaimOptions): Promise<QueuedDelivery[]> {
    return withTransaction(this.pool, async (client) => {
      // The claim must walk deliveries_claim_idx in order and stop at its limit, as the embedded
      // queue does (INDEXED BY). Right after a large intake, before statistics catch up, the planner
      // otherwise gathers every due row and sorts them: measured 35 ms instead of 0.5 ms per claim
      // on 4,500 waiting rows. Without a sort to choose, the ordered index walk is the only plan.
      await client.query('SET LOCAL enable_sort = off')
      const { rows } = await client.query<ClaimRow>(CLAIMABLE, [o.now, o.exclude, o.limit])
      const candidates = takeTurns(rows.map(toQueued), o.limit, o.turns)
      if (candidates.length === 0) return []
      const locked = await client.query<{ seq: string }>(LOCK_MEMBERS, [
        candidates.map((c) => c.seq),
        candidates.map((c) => c.communityId),
        candidates.map((c) => c.memberId),
        MEMBER_CLAIM_LOCK,
      ])
      if (locked.rows.length === 0) return []
      const leased = await client.query<{ seq: string }>(LEASE, [o.owner, o.now + o.leaseMs, locked.rows.map((r) => r.seq), o.now])
      const seqs = new Set(leased.rows.map((r) => Number(r.seq)))
      return candidates.filter((c) => seqs.has(c.seq))
    })
  }

  async settle(seq: number, owner: string, outcome: Outcome): Promise<boolean> {
    const now = Date.now()
    // Later marks of one scope win, as when they are written one by one; one agreed order of
    // scopes keeps two settles touching the same marks from deadlocking.
    const marks = new Map<string, OrderingMark>()
    for (const mark of outcome.marks ?? []) marks.set(mark.scope, mark)
    const sorted = [...marks.values()].sort((a, b) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : 0))
    const attempted = outcome.status !== 'pending' && (outcome.kitRequests > 0 || outcome.status !== 'skipped') ? 1 : 0
    const { rows } = await this.pool.query<{ n: number }>(SETTLE, [
      seq,
      owner,
      outcome.status,
      outcome.lastError,
      JSON.stringify(outcome.steps ?? []),
      attempted,
      outcome.kitRequests,
      // A bigint column: a fractional time (a jittered delay) would be refused and the outcome lost.
      Math.round(outcome.nextAttemptAt ?? now),
      iso(now),
      sorted.map((m) => m.scope),
      sorted.map((m) => m.eventTime),
      sorted.map((m) => m.eventId),
      outcome.reason ?? null,
    ])
    return rows[0]?.n === 1
  }

  async marks(communityId: string, scopes: string[]): Promise<Map<string, OrderingMark>> {
    const { rows } = await this.pool.query<{ scope: string; eventTime: string; eventId: string }>(
      `SELECT scope, event_time AS "eventTime", event_id AS "eventId" FROM ordering_marks
        WHERE community_id = $1 AND scope = ANY($2::text[])`,
      [communityId, scopes],
    )
    return new Map(rows.map((r) => [r.scope, { scope: r.scope, eventTime: Number(r.eventTime), eventId: r.eventId }]))
  }

  /** Other instances may hold live leases on this database: none is orphaned by this one starting. */
  async recover(): Promise<number> {
    return 0
  }

  async release(owner: string): Promise<number> {
    // Only waiting deliveries are ever leased (settling clears the lease), so the partial indexes
    // on waiting rows can serve this instead of a scan of the whole history.
    const { rowCount } = await this.pool.query(
      `UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
        WHERE status IN ('pending', 'retrying') AND lease_owner = $1`,
      [owner],
    )
    return rowCount ?? 0
  }

  async resumeHeld(communityId: string, now: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $2
        WHERE community_id = $3 AND status = 'held'
          AND (sync_id IS NULL OR sync_id IN (SELECT id FROM syncs WHERE status = 'running'))`,
      [now, iso(now), communityId],
    )
    return rowCount ?? 0
  }

  async expediteRetries(communityId: string, now: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `UPDATE deliveries SET next_attempt_at = $1, updated_at = $2
        WHERE status IN ('pending', 'retrying') AND status = 'retrying'
          AND next_attempt_at > $1 AND community_id = $3
          AND (reason IS NULL OR reason <> $4)`,
      [now, iso(now), communityId, LIST_LAG_REASON],
    )
    return rowCount ?? 0
  }

  async retry(communityId: string, deliveryId: string, now: number): Promise<{ result: 'queued' | 'not_found' } | { result: 'not_retryable'; status: string }> {
    const { rows } = await this.pool.query<{ status: string }>('SELECT status FROM deliveries WHERE community_id = $1 AND id = $2', [communityId, deliveryId])
    const row = rows[0]
    if (!row) return { result: 'not_found' }
    if (!(RETRYABLE_STATUSES as readonly string[]).includes(row.status)) return { result: 'not_retryable', status: row.status }
    // Guarded by status: a delivery re-queued meanwhile by another instance is left as it is (queued either way).
    await this.pool.query(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $2, received_at = $1
        WHERE community_id = $3 AND id = $4 AND status = ANY($5::text[])`,
      [now, iso(now), communityId, deliveryId, RETRYABLE_STATUSES],
    )
    return { result: 'queued' }
  }

  async retryMany(communityId: string, filter: RetryManyFilter, limit: number, now: number): Promise<RetryManyResult> {
    const params = [communityId, filter.status, filter.reason ?? null]
    const matching = `FROM deliveries WHERE community_id = $1 AND status = $2 AND ($3::text IS NULL OR reason = $3)`
    return withTransaction(this.pool, async (client) => {
      // Oldest events first, so a member's earlier events are queued before (or with) later ones.
      // The outer status check drops rows another call re-queued while this one waited for them.
      const requeued = await client.query(
        `UPDATE deliveries SET status = 'pending', next_attempt_at = $4, updated_at = $5, received_at = $4
          WHERE status = $2 AND seq IN (SELECT seq ${matching} ORDER BY event_time, seq LIMIT $6)`,
        [...params, now, iso(now), limit],
      )
      const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n ${matching}`, params)
      return { queued: requeued.rowCount ?? 0, remaining: rows[0]?.n ?? 0 }
    })
  }

  async purgeFinished(before: number, limit: number): Promise<Purged> {
    // Rows another instance is retrying or purging right now are left for the next batch; a row
    // re-queued after this statement began is re-checked on locking and kept.
    const { rows } = await this.pool.query<Purged>(
      `WITH doomed AS (
         SELECT seq, community_id, event_id FROM deliveries
          WHERE status IN ('succeeded', 'failed', 'skipped') AND updated_at < $1
          ORDER BY updated_at LIMIT $2
          FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM deliveries d USING doomed WHERE d.seq = doomed.seq RETURNING d.seq
       ), gone_events AS (
         DELETE FROM events e USING doomed WHERE e.community_id = doomed.community_id AND e.id = doomed.event_id RETURNING e.id
       )
       SELECT (SELECT count(*) FROM gone)::int AS deliveries, (SELECT count(*) FROM gone_events)::int AS events`,
      [iso(before), limit],
    )
    return rows[0] ?? { deliveries: 0, events: 0 }
  }

  async nextDueAt(): Promise<number | null> {
    const { rows } = await this.pool.query<{ t: string | null }>(`SELECT min(next_attempt_at) AS t FROM deliveries WHERE status IN ('pending', 'retrying')`)
    const t = rows[0]?.t
    return t === null || t === undefined ? null : Number(t)
  }

  async depth(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM deliveries WHERE status IN ('pending', 'retrying', 'held') GROUP BY status`,
    )
    const depth: Record<string, number> = { pending: 0, retrying: 0, held: 0 }
    for (const r of rows) depth[r.status] = r.n
    return depth
  }
}
