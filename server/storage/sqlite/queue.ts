/** The embedded queue: deliveries in SQLite, claimed with leases inside short transactions. */
import { SNAPSHOT_PRIORITY, SNAPSHOT_TYPE } from '../../core/snapshot.ts'
import type Database from 'better-sqlite3'
import { sql } from 'drizzle-orm'
import { takeTurns } from '../../core/turns.ts'
import type { ClaimOptions, EnqueueResult, NewDelivery, Outcome, Purged, QueuedDelivery, BulkClaimOptions } from '../../core/queue.ts'
import { claimable, FINISHED, QueueStore, waitingCommunities } from '../common/queue.ts'
import { sqliteRunner } from '../common/sql.ts'
import { finishIfDone } from '../common/syncs.ts'
import { attempted, iso, newDeliveryId } from '../common/values.ts'

/**
 * The embedded queue. A group commit (see QueueStore.enqueue) is one transaction with a synced
 * WAL, so concurrent intake shares one fsync instead of paying one each. Claims and outcomes commit
 * without their own fsync: a power cut can make a delivery run again (its Kit calls are idempotent
 * in effect), never lose one.
 */
export class SqliteQueue extends QueueStore {
  private readonly settleTx: (seq: number, owner: string, outcome: Outcome, now: number) => boolean
  private readonly enqueueTx: (batch: NewDelivery[]) => EnqueueResult[]
  private readonly claimTx: (o: ClaimOptions) => QueuedDelivery[]
  private readonly claimBulkTx: (o: BulkClaimOptions) => QueuedDelivery[]
  private readonly purgeTx: (before: string, limit: number) => Purged

  constructor(private readonly sqlite: Database.Database) {
    const runner = sqliteRunner(sqlite)
    super(runner)
    const insertEvent = sqlite.prepare(
      `INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
       VALUES (@communityId, @eventId, @eventType, @memberId, @memberEmail, @eventTime, @payload, @receivedAt)
       ON CONFLICT DO NOTHING`,
    )
    const insertDelivery = sqlite.prepare(
      `INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status,
         last_error, reason, next_attempt_at, received_at, created_at, updated_at, priority)
       VALUES (@id, @communityId, @eventId, @eventType, @memberId, @memberEmail, @eventTime, @status,
         @lastError, @reason, @receivedAt, @receivedAt, @createdAt, @createdAt,
         CASE WHEN @eventType = @snapshotType THEN @snapshotPriority ELSE 0 END)`,
    )
    const waiting = runner.prepareNow(sql`${waitingCommunities(runner)}
      SELECT id FROM waiting WHERE id IS NOT NULL AND id NOT IN (SELECT value FROM json_each(${sql.placeholder('exclude')}))`)
    const claimableIn = runner.prepareNow(
      claimable(runner, sql.placeholder('communityId'), sql.placeholder('now'), sql.placeholder('limit')),
    )
    const snapshotsIn = runner.prepareNow(
      claimable(runner, sql.placeholder('communityId'), sql.placeholder('now'), sql.placeholder('limit'), true),
    )
    const finish = runner.prepareNow(
      finishIfDone(sql`(SELECT sync_id FROM deliveries WHERE seq = ${sql.placeholder('seq')})`, sql.placeholder('now')),
    )
    const lease = sqlite.prepare(
      `UPDATE deliveries SET lease_owner = @owner, lease_until = @until
        WHERE seq = @seq AND (lease_until IS NULL OR lease_until < @now)`,
    )
    const settle = sqlite.prepare(
      `UPDATE deliveries
          SET status = @status, last_error = @lastError, reason = @reason, steps = @steps,
              attempts = attempts + @attempted, kit_requests = kit_requests + @kitRequests,
              next_attempt_at = @nextAttemptAt, lease_owner = NULL, lease_until = NULL, updated_at = @updatedAt
        WHERE seq = @seq AND lease_owner = @owner`,
    )
    // The mark belongs to the settled delivery's community, read from its row.
    const mark = sqlite.prepare(
      `INSERT INTO ordering_marks (community_id, scope, event_time, event_id)
       SELECT community_id, @scope, @eventTime, @eventId FROM deliveries WHERE seq = @seq
       ON CONFLICT (community_id, scope) DO UPDATE SET event_time = excluded.event_time, event_id = excluded.event_id`,
    )
    this.settleTx = sqlite.transaction((seq: number, owner: string, outcome: Outcome, now: number) => {
      const changed = settle.run({
        seq,
        owner,
        status: outcome.status,
        lastError: outcome.lastError,
        reason: outcome.reason ?? null,
        steps: JSON.stringify(outcome.steps ?? []),
        attempted: attempted(outcome),
        kitRequests: outcome.kitRequests,
        nextAttemptAt: outcome.nextAttemptAt ?? now,
        updatedAt: iso(now),
      }).changes
      if (changed !== 1) return false
      for (const m of outcome.marks ?? []) mark.run({ seq, ...m })
      if (FINISHED.has(outcome.status)) finish({ seq, now })
      return true
    })

    this.enqueueTx = sqlite.transaction((batch: NewDelivery[]) =>
      batch.map((d) => {
        if (insertEvent.run(d).changes === 0) return { accepted: false, deliveryId: null }
        const id = newDeliveryId()
        const skipped = d.skippedReason ?? null
        insertDelivery.run({
          ...d,
          id,
          status: skipped ? 'skipped' : 'pending',
          lastError: skipped,
          reason: skipped ? (d.reason ?? null) : null,
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
      const communities = waiting({ exclude: JSON.stringify(o.exclude) }).rows as { id: string }[]
      const candidates = communities.flatMap(
        ({ id }) => claimableIn({ communityId: id, now: o.now, limit: o.limit }).rows as unknown as QueuedDelivery[],
      )
      return takeTurns(candidates, o.limit, o.turns).filter(
        (row) => lease.run({ owner: o.owner, until: o.now + o.leaseMs, seq: row.seq, now: o.now }).changes === 1,
      )
    })

    this.claimBulkTx = sqlite.transaction((o: BulkClaimOptions) =>
      (snapshotsIn({ communityId: o.communityId, now: o.now, limit: o.limit }).rows as unknown as QueuedDelivery[]).filter(
        (row) => lease.run({ owner: o.owner, until: o.now + o.leaseMs, seq: row.seq, now: o.now }).changes === 1,
      ),
    )

    // The status list matches deliveries_finished_idx, so a batch reads only finished rows, oldest first.
    const finishedBefore = sqlite.prepare(
      `SELECT seq, community_id AS communityId, event_id AS eventId FROM deliveries
        WHERE status IN ('succeeded', 'failed', 'skipped') AND updated_at < @before
        ORDER BY updated_at LIMIT @limit`,
    )
    const deleteEvent = sqlite.prepare('DELETE FROM events WHERE community_id = @communityId AND id = @eventId')
    const deleteDelivery = sqlite.prepare('DELETE FROM deliveries WHERE seq = @seq')
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

  /** An accepted event must survive a power cut, not just a crash: this commit syncs the WAL. */
  protected async commit(batch: NewDelivery[]): Promise<EnqueueResult[]> {
    try {
      this.sqlite.pragma('synchronous = FULL')
      return this.enqueueTx(batch)
    } finally {
      this.sqlite.pragma('synchronous = NORMAL')
    }
  }

  async claim(options: ClaimOptions): Promise<QueuedDelivery[]> {
    return this.claimTx(options)
  }

  async claimBulk(options: BulkClaimOptions): Promise<QueuedDelivery[]> {
    return this.claimBulkTx(options)
  }

  async settle(seq: number, owner: string, outcome: Outcome): Promise<boolean> {
    return this.settleTx(seq, owner, outcome, Date.now())
  }

  /** One process per database file: every lease found at start is orphaned. */
  async recover(): Promise<number> {
    await this.finishIdleSyncs(Date.now())
    return this.sqlite.prepare('UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL').run().changes
  }

  async purgeFinished(before: number, limit: number): Promise<Purged> {
    return this.purgeTx(iso(before), limit)
  }
}
