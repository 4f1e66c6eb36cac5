/** The embedded outbox of events to the platform: the shared verbs (`../common/outbox.ts`), claimed with leases inside short SQLite transactions. */
import type Database from 'better-sqlite3'
import { sql } from 'drizzle-orm'
import type { FailureTally, NewPlatformEvent, PlatformEventRecord } from '../../core/storage.ts'
import { claimableEvents, eventColumns, failureReport, insertEvent, OutboxStore, tallied, type ReportFailures } from '../common/outbox.ts'
import { sqliteRunner, type SqliteRunner } from '../common/sql.ts'

export class SqliteOutbox extends OutboxStore {
  private readonly sqliteRun: SqliteRunner
  private readonly claimTx: (owner: string, now: number, leaseMs: number, limit: number) => PlatformEventRecord[]
  private readonly reportTx: (...args: Parameters<ReportFailures>) => NewPlatformEvent | null
  readonly reportFailures: ReportFailures = async (...args) => this.reportTx(...args)

  constructor(sqlite: Database.Database) {
    const run = sqliteRunner(sqlite)
    super(run)
    this.sqliteRun = run
    this.claimTx = sqlite.transaction((owner: string, now: number, leaseMs: number, limit: number) => {
      const rows = this.sqliteRun.now(sql`SELECT ${eventColumns('e')} ${claimableEvents(now, limit)}`)
        .rows as unknown as PlatformEventRecord[]
      return rows.filter(
        (row) =>
          this.sqliteRun.now(
            sql`UPDATE platform_events SET lease_owner = ${owner}, lease_until = ${now + leaseMs}
                 WHERE seq = ${row.seq} AND (lease_until IS NULL OR lease_until < ${now})`,
          ).changes === 1,
      )
    })
    this.reportTx = sqlite.transaction(
      (communityId: string, quietSince: number, now: number, build: (tally: FailureTally) => NewPlatformEvent) => {
        if (this.sqliteRun.now(failureReport.recent(communityId, quietSince)).rows.length > 0) return null
        const reasons = this.sqliteRun.now(failureReport.reasons(communityId)).rows as { reason: string; count: number }[]
        const event = tallied(reasons, build)
        if (!event) return null
        this.sqliteRun.now(failureReport.markReported(communityId, event.id))
        this.sqliteRun.now(insertEvent(event, now))
        return event
      },
    )
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<PlatformEventRecord[]> {
    return this.claimTx(owner, now, leaseMs, limit)
  }

  async releaseLeases(): Promise<void> {
    await this.run.run(sql`UPDATE platform_events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL`)
  }
}
