/**
 * The shared outbox of events to the platform: the verbs of `../common/outbox.ts`, with claims for
 * several instances at once: SKIP LOCKED passes over rows another instance is claiming, a lease
 * keeps a claimed row from every other instance until it expires (an instance that dies leaves
 * leases that run out), and a member's later event is not claimable while an earlier one is
 * pending, leased or not.
 */
import { sql } from 'drizzle-orm'
import type pg from 'pg'
import type { PlatformEventRecord } from '../../core/storage.ts'
import { claimableEvents, eventColumns, failureReport, insertEvent, OutboxStore, tallied, type ReportFailures } from '../common/outbox.ts'
import { postgresRunner, queryPostgres } from '../common/sql.ts'
import { withTransaction } from '../common/transaction.ts'

/** First key of the advisory lock that lets one instance at a time report a community's failures. */
const FAILURE_REPORT_LOCK = 0x4b17_0e70

export class PostgresOutbox extends OutboxStore {
  constructor(private readonly pool: pg.Pool) {
    super(postgresRunner(pool))
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<PlatformEventRecord[]> {
    const rows = await this.run.all<PlatformEventRecord>(
      sql`WITH picked AS (SELECT e.seq ${claimableEvents(now, limit)} FOR UPDATE OF e SKIP LOCKED)
          UPDATE platform_events p SET lease_owner = ${owner}, lease_until = ${now + leaseMs}
            FROM picked WHERE p.seq = picked.seq
          RETURNING ${eventColumns('p')}`,
    )
    return rows.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq)
  }

  /** Other instances may be alive: their leases are left to expire. */
  async releaseLeases(): Promise<void> {}

  readonly reportFailures: ReportFailures = (communityId, quietSince, now, build) =>
    withTransaction(this.pool, async (client) => {
      await queryPostgres(client, sql`SELECT pg_advisory_xact_lock(${FAILURE_REPORT_LOCK}, hashtext(${communityId}))`)
      if ((await queryPostgres(client, failureReport.recent(communityId, quietSince))).rows.length > 0) return null
      const { rows } = await queryPostgres(client, failureReport.reasons(communityId))
      const event = tallied(rows as { reason: string; count: number }[], build)
      if (!event) return null
      await queryPostgres(client, failureReport.markReported(communityId, event.id))
      await queryPostgres(client, insertEvent(event, now))
      return event
    })
}
