/** The embedded outbox of events to the platform: rows in SQLite, claimed with leases inside short transactions. */
import type Database from 'better-sqlite3'
import type {
  FailureTally,
  NewPlatformEvent,
  PlatformEventOutcome,
  PlatformEventRecord,
  PlatformEventState,
  PlatformOutbox,
} from '../../core/storage.ts'

const COLUMNS = `seq, id, community_id AS communityId, type, member_id AS memberId, body, state, attempts,
  last_error AS lastError, next_attempt_at AS nextAttemptAt, give_up_at AS giveUpAt, observed_at AS observedAt,
  created_at AS createdAt, updated_at AS updatedAt, sent_at AS sentAt`

const FAILING = 'kit.deliveries.failing'

export class SqliteOutbox implements PlatformOutbox {
  private readonly insert: Database.Statement
  private readonly claimable: Database.Statement
  private readonly lease: Database.Statement
  private readonly claimTx: (owner: string, now: number, leaseMs: number, limit: number) => PlatformEventRecord[]
  private readonly reportTx: (
    communityId: string,
    quietSince: number,
    now: number,
    build: (tally: FailureTally) => NewPlatformEvent,
  ) => NewPlatformEvent | null

  constructor(private readonly sqlite: Database.Database) {
    this.insert = sqlite.prepare(
      `INSERT INTO platform_events (id, community_id, type, member_id, once_key, body, state, next_attempt_at, give_up_at,
         observed_at, created_at, updated_at)
       VALUES (@id, @communityId, @type, @memberId, @onceKey, @body, 'pending', @now, @giveUpAt, @observedAt, @now, @now)
       ON CONFLICT DO NOTHING`,
    )
    // Due, not leased, and the first pending event of its member (events without a member wait for nobody).
    this.claimable = sqlite.prepare(
      `SELECT ${COLUMNS} FROM platform_events e
        WHERE e.state = 'pending' AND e.next_attempt_at <= @now
          AND (e.lease_until IS NULL OR e.lease_until < @now)
          AND (e.member_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM platform_events o
                 WHERE o.community_id = e.community_id AND o.member_id = e.member_id
                   AND o.state = 'pending' AND o.seq < e.seq))
        ORDER BY e.next_attempt_at, e.seq
        LIMIT @limit`,
    )
    this.lease = sqlite.prepare(
      `UPDATE platform_events SET lease_owner = @owner, lease_until = @until
        WHERE seq = @seq AND (lease_until IS NULL OR lease_until < @now)`,
    )
    this.claimTx = sqlite.transaction((owner: string, now: number, leaseMs: number, limit: number) => {
      const rows = this.claimable.all({ now, limit }) as PlatformEventRecord[]
      return rows.filter((row) => this.lease.run({ owner, until: now + leaseMs, seq: row.seq, now }).changes === 1)
    })
    this.reportTx = sqlite.transaction(
      (communityId: string, quietSince: number, now: number, build: (tally: FailureTally) => NewPlatformEvent) => {
        const recent = sqlite
          .prepare(`SELECT 1 FROM platform_events WHERE community_id = ? AND type = ? AND created_at > ? LIMIT 1`)
          .get(communityId, FAILING, quietSince)
        if (recent) return null
        const reasons = sqlite
          .prepare(
            `SELECT reason, count(*) AS count FROM platform_failures WHERE community_id = ? AND notice_id IS NULL
            GROUP BY reason ORDER BY count(*) DESC, reason`,
          )
          .all(communityId) as { reason: string; count: number }[]
        const failed = reasons.reduce((sum, r) => sum + r.count, 0)
        if (failed === 0) return null
        const event = build({ failed, reasons })
        sqlite.prepare(`UPDATE platform_failures SET notice_id = ? WHERE community_id = ? AND notice_id IS NULL`).run(event.id, communityId)
        this.insert.run({ ...event, now })
        return event
      },
    )
  }

  async add(event: NewPlatformEvent, now: number): Promise<boolean> {
    return this.insert.run({ ...event, now }).changes === 1
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<PlatformEventRecord[]> {
    return this.claimTx(owner, now, leaseMs, limit)
  }

  async settle(seq: number, owner: string, outcome: PlatformEventOutcome, now: number): Promise<boolean> {
    const result = this.sqlite
      .prepare(
        `UPDATE platform_events
            SET state = @state, attempts = attempts + 1, last_error = @lastError, next_attempt_at = @nextAttemptAt,
                sent_at = @sentAt, lease_owner = NULL, lease_until = NULL, updated_at = @now
          WHERE seq = @seq AND lease_owner = @owner`,
      )
      .run({
        seq,
        owner,
        now,
        state: outcome.state,
        lastError: outcome.state === 'sent' ? null : outcome.lastError,
        nextAttemptAt: outcome.state === 'pending' ? outcome.nextAttemptAt : now,
        sentAt: outcome.state === 'sent' ? now : null,
      })
    return result.changes === 1
  }

  async releaseLeases(): Promise<void> {
    this.sqlite.prepare(`UPDATE platform_events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL`).run()
  }

  async nextDue(): Promise<number | null> {
    const row = this.sqlite.prepare(`SELECT min(next_attempt_at) AS t FROM platform_events WHERE state = 'pending'`).get() as {
      t: number | null
    }
    return row.t
  }

  async list(
    communityId: string,
    filter: { state?: PlatformEventState; beforeSeq?: number; limit: number },
  ): Promise<PlatformEventRecord[]> {
    return this.sqlite
      .prepare(
        `SELECT ${COLUMNS} FROM platform_events
          WHERE community_id = @communityId AND (@state IS NULL OR state = @state) AND (@beforeSeq IS NULL OR seq < @beforeSeq)
          ORDER BY seq DESC LIMIT @limit`,
      )
      .all({ communityId, state: filter.state ?? null, beforeSeq: filter.beforeSeq ?? null, limit: filter.limit }) as PlatformEventRecord[]
  }

  async get(communityId: string, id: string): Promise<PlatformEventRecord | undefined> {
    return this.sqlite.prepare(`SELECT ${COLUMNS} FROM platform_events WHERE community_id = ? AND id = ?`).get(communityId, id) as
      PlatformEventRecord | undefined
  }

  async retry(communityId: string, id: string, now: number, giveUpAt: number): Promise<boolean> {
    const result = this.sqlite
      .prepare(
        `UPDATE platform_events SET state = 'pending', next_attempt_at = @now, give_up_at = @giveUpAt, updated_at = @now
          WHERE community_id = @communityId AND id = @id AND state = 'failed'`,
      )
      .run({ communityId, id, now, giveUpAt })
    return result.changes === 1
  }

  async summary(communityId: string, since: number): Promise<{ type: string; state: PlatformEventState; count: number }[]> {
    return this.sqlite
      .prepare(
        `SELECT type, state, count(*) AS count FROM platform_events WHERE community_id = ? AND created_at >= ?
          GROUP BY type, state ORDER BY type, state`,
      )
      .all(communityId, since) as { type: string; state: PlatformEventState; count: number }[]
  }

  async recordFailure(communityId: string, reason: string, now: number): Promise<void> {
    this.sqlite.prepare(`INSERT INTO platform_failures (community_id, reason, failed_at) VALUES (?, ?, ?)`).run(communityId, reason, now)
  }

  async reportFailures(
    communityId: string,
    quietSince: number,
    now: number,
    build: (tally: FailureTally) => NewPlatformEvent,
  ): Promise<NewPlatformEvent | null> {
    return this.reportTx(communityId, quietSince, now, build)
  }

  async unreportedFailures(): Promise<string[]> {
    const rows = this.sqlite.prepare(`SELECT DISTINCT community_id AS c FROM platform_failures WHERE notice_id IS NULL`).all() as {
      c: string
    }[]
    return rows.map((r) => r.c)
  }

  async purge(before: number, limit: number): Promise<number> {
    const finished = `state IN ('sent', 'failed') AND updated_at < @before`
    return this.sqlite.transaction(() => {
      const deleted = this.sqlite
        .prepare(
          `DELETE FROM platform_events WHERE seq IN (SELECT seq FROM platform_events WHERE ${finished} AND once_key IS NULL LIMIT @limit)`,
        )
        .run({ before, limit }).changes
      const emptied = this.sqlite
        .prepare(
          `UPDATE platform_events SET body = '{}', member_id = NULL
            WHERE seq IN (SELECT seq FROM platform_events WHERE ${finished} AND once_key IS NOT NULL AND member_id IS NOT NULL LIMIT @limit)`,
        )
        .run({ before, limit }).changes
      const failures = this.sqlite
        .prepare(
          `DELETE FROM platform_failures WHERE seq IN (SELECT seq FROM platform_failures WHERE notice_id IS NOT NULL AND failed_at < @before LIMIT @limit)`,
        )
        .run({ before, limit }).changes
      return deleted + emptied + failures
    })()
  }
}
