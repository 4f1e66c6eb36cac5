/**
 * The shared outbox of events to the platform. Same semantics as the embedded one
 * (`../sqlite/outbox.ts`); several instances claim at once: SKIP LOCKED passes over rows another
 * instance is claiming, a lease keeps a claimed row from every other instance until it expires
 * (an instance that dies leaves leases that run out), and a member's later event is not claimable
 * while an earlier one is pending, leased or not.
 */
import type pg from 'pg'
import type {
  FailureTally,
  NewPlatformEvent,
  PlatformEventOutcome,
  PlatformEventRecord,
  PlatformEventState,
  PlatformOutbox,
} from '../../core/storage.ts'
import { withTransaction } from '../common/transaction.ts'

const columns = (t: string) => `${t}.seq, ${t}.id, ${t}.community_id AS "communityId", ${t}.type, ${t}.member_id AS "memberId",
  ${t}.body, ${t}.state, ${t}.attempts, ${t}.last_error AS "lastError", ${t}.next_attempt_at AS "nextAttemptAt",
  ${t}.give_up_at AS "giveUpAt", ${t}.observed_at AS "observedAt", ${t}.created_at AS "createdAt",
  ${t}.updated_at AS "updatedAt", ${t}.sent_at AS "sentAt"`
const COLUMNS = columns('platform_events')

const NUMBERS = ['seq', 'attempts', 'nextAttemptAt', 'giveUpAt', 'observedAt', 'createdAt', 'updatedAt'] as const

/** bigint columns arrive as strings from `pg`. */
function toRecord(row: Record<string, unknown>): PlatformEventRecord {
  const record = { ...row } as Record<string, unknown>
  for (const key of NUMBERS) record[key] = Number(row[key])
  record.sentAt = row.sentAt === null ? null : Number(row.sentAt)
  return record as unknown as PlatformEventRecord
}

const FAILING = 'kit.deliveries.failing'
/** First key of the advisory lock that lets one instance at a time report a community's failures. */
const FAILURE_REPORT_LOCK = 0x4b17_0e70

const INSERT = `INSERT INTO platform_events (id, community_id, type, member_id, once_key, body, state, next_attempt_at, give_up_at,
    observed_at, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $7, $7)
  ON CONFLICT DO NOTHING`

const insertParams = (e: NewPlatformEvent, now: number) => [
  e.id,
  e.communityId,
  e.type,
  e.memberId,
  e.onceKey,
  e.body,
  now,
  e.giveUpAt,
  e.observedAt,
]

export class PostgresOutbox implements PlatformOutbox {
  constructor(private readonly pool: pg.Pool) {}

  async add(event: NewPlatformEvent, now: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(INSERT, insertParams(event, now))
    return rowCount === 1
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<PlatformEventRecord[]> {
    const { rows } = await this.pool.query(
      `WITH picked AS (
         SELECT e.seq FROM platform_events e
          WHERE e.state = 'pending' AND e.next_attempt_at <= $1
            AND (e.lease_until IS NULL OR e.lease_until < $1)
            AND (e.member_id IS NULL OR NOT EXISTS (
                  SELECT 1 FROM platform_events o
                   WHERE o.community_id = e.community_id AND o.member_id = e.member_id
                     AND o.state = 'pending' AND o.seq < e.seq))
          ORDER BY e.next_attempt_at, e.seq
          LIMIT $2
          FOR UPDATE OF e SKIP LOCKED
       )
       UPDATE platform_events p SET lease_owner = $3, lease_until = $4
         FROM picked WHERE p.seq = picked.seq
       RETURNING ${columns('p')}`,
      [now, limit, owner, now + leaseMs],
    )
    return rows.map(toRecord).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq)
  }

  async settle(seq: number, owner: string, outcome: PlatformEventOutcome, now: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE platform_events
          SET state = $3, attempts = attempts + 1, last_error = $4, next_attempt_at = $5, sent_at = $6,
              lease_owner = NULL, lease_until = NULL, updated_at = $7
        WHERE seq = $1 AND lease_owner = $2`,
      [
        seq,
        owner,
        outcome.state,
        outcome.state === 'sent' ? null : outcome.lastError,
        outcome.state === 'pending' ? outcome.nextAttemptAt : now,
        outcome.state === 'sent' ? now : null,
        now,
      ],
    )
    return rowCount === 1
  }

  /** Other instances may be alive: their leases are left to expire. */
  async releaseLeases(): Promise<void> {}

  async nextDue(): Promise<number | null> {
    const { rows } = await this.pool.query<{ t: string | null }>(
      `SELECT min(next_attempt_at) AS t FROM platform_events WHERE state = 'pending'`,
    )
    return rows[0]?.t == null ? null : Number(rows[0].t)
  }

  async list(
    communityId: string,
    filter: { state?: PlatformEventState; beforeSeq?: number; limit: number },
  ): Promise<PlatformEventRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT ${COLUMNS} FROM platform_events
        WHERE community_id = $1 AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR seq < $3)
        ORDER BY seq DESC LIMIT $4`,
      [communityId, filter.state ?? null, filter.beforeSeq ?? null, filter.limit],
    )
    return rows.map(toRecord)
  }

  async get(communityId: string, id: string): Promise<PlatformEventRecord | undefined> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `SELECT ${COLUMNS} FROM platform_events WHERE community_id = $1 AND id = $2`,
      [communityId, id],
    )
    return rows[0] ? toRecord(rows[0]) : undefined
  }

  async retry(communityId: string, id: string, now: number, giveUpAt: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE platform_events SET state = 'pending', next_attempt_at = $3, give_up_at = $4, updated_at = $3
        WHERE community_id = $1 AND id = $2 AND state = 'failed'`,
      [communityId, id, now, giveUpAt],
    )
    return rowCount === 1
  }

  async summary(communityId: string, since: number): Promise<{ type: string; state: PlatformEventState; count: number }[]> {
    const { rows } = await this.pool.query<{ type: string; state: PlatformEventState; count: number }>(
      `SELECT type, state, count(*)::int AS count FROM platform_events WHERE community_id = $1 AND created_at >= $2
        GROUP BY type, state ORDER BY type, state`,
      [communityId, since],
    )
    return rows
  }

  async recordFailure(communityId: string, reason: string, now: number): Promise<void> {
    await this.pool.query(`INSERT INTO platform_failures (community_id, reason, failed_at) VALUES ($1, $2, $3)`, [communityId, reason, now])
  }

  async reportFailures(
    communityId: string,
    quietSince: number,
    now: number,
    build: (tally: FailureTally) => NewPlatformEvent,
  ): Promise<NewPlatformEvent | null> {
    return withTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [FAILURE_REPORT_LOCK, communityId])
      const recent = await client.query(`SELECT 1 FROM platform_events WHERE community_id = $1 AND type = $2 AND created_at > $3 LIMIT 1`, [
        communityId,
        FAILING,
        quietSince,
      ])
      if (recent.rowCount) return null
      const { rows: reasons } = await client.query<{ reason: string; count: number }>(
        `SELECT reason, count(*)::int AS count FROM platform_failures WHERE community_id = $1 AND notice_id IS NULL
          GROUP BY reason ORDER BY count(*) DESC, reason`,
        [communityId],
      )
      const failed = reasons.reduce((sum, r) => sum + r.count, 0)
      if (failed === 0) return null
      const event = build({ failed, reasons })
      await client.query(`UPDATE platform_failures SET notice_id = $1 WHERE community_id = $2 AND notice_id IS NULL`, [
        event.id,
        communityId,
      ])
      await client.query(INSERT, insertParams(event, now))
      return event
    })
  }

  async unreportedFailures(): Promise<string[]> {
    const { rows } = await this.pool.query<{ c: string }>(
      `SELECT DISTINCT community_id AS c FROM platform_failures WHERE notice_id IS NULL`,
    )
    return rows.map((r) => r.c)
  }

  async purge(before: number, limit: number): Promise<number> {
    const finished = `state IN ('sent', 'failed') AND updated_at < $1`
    const deleted = await this.pool.query(
      `DELETE FROM platform_events WHERE seq IN (SELECT seq FROM platform_events WHERE ${finished} AND once_key IS NULL LIMIT $2)`,
      [before, limit],
    )
    const emptied = await this.pool.query(
      `UPDATE platform_events SET body = '{}', member_id = NULL
        WHERE seq IN (SELECT seq FROM platform_events WHERE ${finished} AND once_key IS NOT NULL AND member_id IS NOT NULL LIMIT $2)`,
      [before, limit],
    )
    const failures = await this.pool.query(
      `DELETE FROM platform_failures WHERE seq IN (SELECT seq FROM platform_failures WHERE notice_id IS NOT NULL AND failed_at < $1 LIMIT $2)`,
      [before, limit],
    )
    return (deleted.rowCount ?? 0) + (emptied.rowCount ?? 0) + (failures.rowCount ?? 0)
  }
}
