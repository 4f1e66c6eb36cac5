/**
 * What both outboxes of events to the platform share: the row's columns, the insert, and every
 * verb the dialects express alike. A dialect's outbox adds how it claims (leases inside one
 * SQLite transaction, or SKIP LOCKED across instances) and how it reports failures atomically.
 */
import { sql, type SQL } from 'drizzle-orm'
import type {
  FailureTally,
  NewPlatformEvent,
  PlatformEventOutcome,
  PlatformEventRecord,
  PlatformEventState,
  PlatformOutbox,
} from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'

/** The columns of a `PlatformEventRecord`, from `platform_events` under the alias `t`. */
export const eventColumns = (t: string): SQL =>
  sql.raw(`${t}.seq, ${t}.id, ${t}.community_id AS "communityId", ${t}.type, ${t}.member_id AS "memberId",
  ${t}.body, ${t}.state, ${t}.attempts, ${t}.last_error AS "lastError", ${t}.next_attempt_at AS "nextAttemptAt",
  ${t}.give_up_at AS "giveUpAt", ${t}.observed_at AS "observedAt", ${t}.created_at AS "createdAt",
  ${t}.updated_at AS "updatedAt", ${t}.sent_at AS "sentAt"`)

const COLUMNS = eventColumns('platform_events')

/** The type of the notice that reports a community's failed deliveries. */
export const FAILING = 'kit.deliveries.failing'

export const insertEvent = (e: NewPlatformEvent, now: number): SQL =>
  sql`INSERT INTO platform_events (id, community_id, type, member_id, once_key, body, state, next_attempt_at, give_up_at,
      observed_at, created_at, updated_at)
    VALUES (${e.id}, ${e.communityId}, ${e.type}, ${e.memberId}, ${e.onceKey}, ${e.body}, 'pending', ${now}, ${e.giveUpAt},
      ${e.observedAt}, ${now}, ${now})
    ON CONFLICT DO NOTHING`

/**
 * Due, not leased, and the first pending event of its member (events without a member wait for
 * nobody), as `e`, in claim order: what follows a claim's SELECT list.
 */
export const claimableEvents = (now: number, limit: number): SQL =>
  sql`FROM platform_events e
   WHERE e.state = 'pending' AND e.next_attempt_at <= ${now}
     AND (e.lease_until IS NULL OR e.lease_until < ${now})
     AND (e.member_id IS NULL OR NOT EXISTS (
           SELECT 1 FROM platform_events o
            WHERE o.community_id = e.community_id AND o.member_id = e.member_id
              AND o.state = 'pending' AND o.seq < e.seq))
   ORDER BY e.next_attempt_at, e.seq
   LIMIT ${limit}`

/** The steps of reporting a community's failures, which a dialect runs in one transaction. */
export const failureReport = {
  /** A row when a failure notice went out after `quietSince`. */
  recent: (communityId: string, quietSince: number): SQL =>
    sql`SELECT 1 FROM platform_events WHERE community_id = ${communityId} AND type = ${FAILING} AND created_at > ${quietSince} LIMIT 1`,
  /** The unreported failures, counted by reason, most first. */
  reasons: (communityId: string): SQL =>
    sql`SELECT reason, count(*) AS count FROM platform_failures WHERE community_id = ${communityId} AND notice_id IS NULL
         GROUP BY reason ORDER BY count(*) DESC, reason`,
  markReported: (communityId: string, noticeId: string): SQL =>
    sql`UPDATE platform_failures SET notice_id = ${noticeId} WHERE community_id = ${communityId} AND notice_id IS NULL`,
}

/** The notice `build` makes of the counted reasons, or null when nothing failed. */
export function tallied(
  reasons: { reason: string; count: number }[],
  build: (tally: FailureTally) => NewPlatformEvent,
): NewPlatformEvent | null {
  const counted = reasons.map((r) => ({ reason: r.reason, count: Number(r.count) }))
  const failed = counted.reduce((sum, r) => sum + r.count, 0)
  return failed === 0 ? null : build({ failed, reasons: counted })
}

export type ReportFailures = PlatformOutbox['reportFailures']

export abstract class OutboxStore implements PlatformOutbox {
  protected constructor(protected readonly run: SqlRunner) {}

  abstract claim(owner: string, now: number, leaseMs: number, limit: number): Promise<PlatformEventRecord[]>
  abstract releaseLeases(): Promise<void>
  /** One report per community at a time, its steps (`failureReport`) in one transaction. */
  abstract readonly reportFailures: ReportFailures

  async add(event: NewPlatformEvent, now: number): Promise<boolean> {
    return (await this.run.run(insertEvent(event, now))) === 1
  }

  async settle(seq: number, owner: string, outcome: PlatformEventOutcome, now: number): Promise<boolean> {
    const lastError = outcome.state === 'sent' ? null : outcome.lastError
    const nextAttemptAt = outcome.state === 'pending' ? outcome.nextAttemptAt : now
    const sentAt = outcome.state === 'sent' ? now : null
    const changed = await this.run.run(
      sql`UPDATE platform_events
             SET state = ${outcome.state}, attempts = attempts + 1, last_error = ${lastError}, next_attempt_at = ${nextAttemptAt},
                 sent_at = ${sentAt}, lease_owner = NULL, lease_until = NULL, updated_at = ${now}
           WHERE seq = ${seq} AND lease_owner = ${owner}`,
    )
    return changed === 1
  }

  async nextDue(): Promise<number | null> {
    // Only events that can be claimed once due: a member's later event waits behind its earlier
    // one, whatever its own time says, and a leased one is due when its lease runs out.
    const [row] = await this.run.all<{ t: number | null }>(
      sql`SELECT min(CASE WHEN e.lease_until IS NOT NULL AND e.lease_until > e.next_attempt_at THEN e.lease_until ELSE e.next_attempt_at END) AS t
            FROM platform_events e
           WHERE e.state = 'pending'
             AND (e.member_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM platform_events o
                    WHERE o.community_id = e.community_id AND o.member_id = e.member_id
                      AND o.state = 'pending' AND o.seq < e.seq))`,
    )
    return row?.t === null || row?.t === undefined ? null : Number(row.t)
  }

  async expedite(now: number): Promise<number> {
    return this.run.run(
      sql`UPDATE platform_events SET next_attempt_at = ${now}, updated_at = ${now}
           WHERE state = 'pending' AND attempts > 0 AND next_attempt_at > ${now}`,
    )
  }

  async list(
    communityId: string,
    filter: { state?: PlatformEventState; beforeSeq?: number; limit: number },
  ): Promise<PlatformEventRecord[]> {
    const state = filter.state === undefined ? sql`` : sql`AND state = ${filter.state}`
    const before = filter.beforeSeq === undefined ? sql`` : sql`AND seq < ${filter.beforeSeq}`
    return this.run.all<PlatformEventRecord>(
      sql`SELECT ${COLUMNS} FROM platform_events WHERE community_id = ${communityId} ${state} ${before}
           ORDER BY seq DESC LIMIT ${filter.limit}`,
    )
  }

  async get(communityId: string, id: string): Promise<PlatformEventRecord | undefined> {
    const [row] = await this.run.all<PlatformEventRecord>(
      sql`SELECT ${COLUMNS} FROM platform_events WHERE community_id = ${communityId} AND id = ${id}`,
    )
    return row
  }

  async retry(communityId: string, id: string, now: number, giveUpAt: number): Promise<boolean> {
    const changed = await this.run.run(
      sql`UPDATE platform_events SET state = 'pending', next_attempt_at = ${now}, give_up_at = ${giveUpAt}, updated_at = ${now}
           WHERE community_id = ${communityId} AND id = ${id} AND state = 'failed'`,
    )
    return changed === 1
  }

  async summary(communityId: string, since: number): Promise<{ type: string; state: PlatformEventState; count: number }[]> {
    return this.run.all<{ type: string; state: PlatformEventState; count: number }>(
      sql`SELECT type, state, count(*) AS count FROM platform_events WHERE community_id = ${communityId} AND created_at >= ${since}
           GROUP BY type, state ORDER BY type, state`,
    )
  }

  async recordFailure(communityId: string, reason: string, now: number): Promise<void> {
    await this.run.run(sql`INSERT INTO platform_failures (community_id, reason, failed_at) VALUES (${communityId}, ${reason}, ${now})`)
  }

  async unreportedFailures(quietSince: number): Promise<string[]> {
    const rows = await this.run.all<{ c: string }>(
      sql`SELECT DISTINCT f.community_id AS c FROM platform_failures f
           WHERE f.notice_id IS NULL
             AND NOT EXISTS (SELECT 1 FROM platform_events e
                              WHERE e.community_id = f.community_id AND e.type = ${FAILING} AND e.created_at > ${quietSince})`,
    )
    return rows.map((r) => r.c)
  }

  async purge(before: number, limit: number): Promise<number> {
    const finished = sql`state IN ('sent', 'failed') AND updated_at < ${before}`
    const ran = await this.run.batch([
      sql`DELETE FROM platform_events
           WHERE seq IN (SELECT seq FROM platform_events WHERE ${finished} AND once_key IS NULL LIMIT ${limit})`,
      sql`UPDATE platform_events SET body = '{}', member_id = NULL
           WHERE seq IN (SELECT seq FROM platform_events WHERE ${finished} AND once_key IS NOT NULL AND member_id IS NOT NULL LIMIT ${limit})`,
      sql`DELETE FROM platform_failures
           WHERE seq IN (SELECT seq FROM platform_failures WHERE notice_id IS NOT NULL AND failed_at < ${before} LIMIT ${limit})`,
    ])
    return ran.reduce((sum, r) => sum + r.changes, 0)
  }
}
