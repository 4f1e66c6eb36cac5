/**
 * The embedded dialect's `syncs`, and the events and held deliveries a sync stages through the
 * queue's tables (the same columns SqliteQueue's intake writes).
 */
import type Database from 'better-sqlite3'
import { reasonWords, type ReasonCode } from '../../core/reasons.ts'
import { SNAPSHOT_PRIORITY } from '../../core/snapshot.ts'
import type { StagedSnapshot, SyncProgressRow, SyncRecord, SyncRepository } from '../../core/storage.ts'

const iso = (ms: number) => new Date(ms).toISOString()

type NewSync = Parameters<SyncRepository['create']>[0]
type StagedSync = Parameters<SyncRepository['stage']>[0]
type Totals = Parameters<SyncRepository['accept']>[1]
type FinalCounts = Parameters<SyncRepository['finish']>[2]

/** Not in flight: a delivery a consumer holds a lease on is left to finish when a sync pauses or is cancelled. */
const NOT_LEASED = '(lease_until IS NULL OR lease_until < @now)'

export class SqliteSyncs implements SyncRepository {
  private readonly insertSync: Database.Statement
  private readonly insertEvent: Database.Statement
  private readonly insertDelivery: Database.Statement
  private readonly progressStmt: Database.Statement
  private readonly stageTx: (sync: StagedSync, members: StagedSnapshot[]) => void
  private readonly acceptTx: (id: string, totals: Totals, now: number) => void
  private readonly discardTx: (id: string) => void
  private readonly pauseTx: (id: string, reason: ReasonCode, now: number) => void
  private readonly resumeTx: (id: string, now: number) => void
  private readonly cancelTx: (id: string, reason: ReasonCode, now: number) => void

  constructor(private readonly sqlite: Database.Database) {
    this.insertSync = sqlite.prepare(
      `INSERT INTO syncs (id, community_id, status, format, started_at, updated_at)
       VALUES (@id, @communityId, 'importing', @format, @startedAt, @startedAt)`,
    )
    this.insertEvent = sqlite.prepare(
      `INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
       VALUES (@communityId, @eventId, @eventType, @memberId, @memberEmail, @startedAt, @payload, @startedAt)`,
    )
    this.insertDelivery = sqlite.prepare(
      `INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status,
         last_error, reason, next_attempt_at, received_at, created_at, updated_at, priority, sync_id)
       VALUES (@deliveryId, @communityId, @eventId, @eventType, @memberId, @memberEmail, @startedAt, 'held',
         @heldWords, @heldReason, @startedAt, @startedAt, @createdAt, @createdAt, @priority, @syncId)`,
    )
    this.progressStmt = sqlite.prepare(
      `SELECT status, count(*) AS n, coalesce(sum(kit_requests), 0) AS k FROM deliveries WHERE sync_id = ? GROUP BY status ORDER BY status`,
    )

    this.stageTx = sqlite.transaction((sync: StagedSync, members: StagedSnapshot[]) => {
      const common = {
        communityId: sync.communityId,
        eventType: sync.eventType,
        startedAt: sync.startedAt,
        heldReason: sync.heldReason,
        heldWords: reasonWords(sync.heldReason),
        createdAt: iso(sync.startedAt),
        priority: SNAPSHOT_PRIORITY,
        syncId: sync.id,
      }
      for (const m of members) {
        const row = { ...common, ...m }
        this.insertEvent.run(row)
        this.insertDelivery.run(row)
      }
    })

    const release = sqlite.prepare(
      `UPDATE deliveries SET status = 'pending', last_error = NULL, reason = NULL, next_attempt_at = ? WHERE sync_id = ? AND status = 'held'`,
    )
    const running = sqlite.prepare(
      `UPDATE syncs SET status = 'running', total = ?, refused = ?, refused_examples = ?, updated_at = ? WHERE id = ?`,
    )
    this.acceptTx = sqlite.transaction((id: string, totals: Totals, now: number) => {
      release.run(now, id)
      running.run(totals.total, totals.refused, totals.refusedExamples, now, id)
    })

    const deleteEvents = sqlite.prepare(
      `DELETE FROM events WHERE (community_id, id) IN (SELECT community_id, event_id FROM deliveries WHERE sync_id = ?)`,
    )
    const deleteDeliveries = sqlite.prepare('DELETE FROM deliveries WHERE sync_id = ?')
    const deleteSync = sqlite.prepare('DELETE FROM syncs WHERE id = ?')
    this.discardTx = sqlite.transaction((id: string) => {
      deleteEvents.run(id)
      deleteDeliveries.run(id)
      deleteSync.run(id)
    })

    const setStatus = sqlite.prepare('UPDATE syncs SET status = @status, updated_at = @now WHERE id = @id')
    const hold = sqlite.prepare(
      `UPDATE deliveries SET status = 'held', last_error = @words, reason = @reason, updated_at = @updatedAt
        WHERE sync_id = @id AND status IN ('pending', 'retrying') AND ${NOT_LEASED}`,
    )
    this.pauseTx = sqlite.transaction((id: string, reason: ReasonCode, now: number) => {
      hold.run({ id, reason, words: reasonWords(reason), now, updatedAt: iso(now) })
      setStatus.run({ id, status: 'paused', now })
    })
    const unhold = sqlite.prepare(
      `UPDATE deliveries SET status = 'pending', last_error = NULL, reason = NULL, next_attempt_at = @now, updated_at = @updatedAt
        WHERE sync_id = @id AND status = 'held'`,
    )
    this.resumeTx = sqlite.transaction((id: string, now: number) => {
      unhold.run({ id, now, updatedAt: iso(now) })
      setStatus.run({ id, status: 'running', now })
    })
    const skip = sqlite.prepare(
      `UPDATE deliveries SET status = 'skipped', last_error = @words, reason = @reason, updated_at = @updatedAt
        WHERE sync_id = @id AND status IN ('pending', 'retrying', 'held') AND ${NOT_LEASED}`,
    )
    this.cancelTx = sqlite.transaction((id: string, reason: ReasonCode, now: number) => {
      skip.run({ id, reason, words: reasonWords(reason), now, updatedAt: iso(now) })
      setStatus.run({ id, status: 'cancelled', now })
    })
  }

  async create(sync: NewSync): Promise<void> {
    this.insertSync.run(sync)
  }

  async stage(sync: StagedSync, members: StagedSnapshot[]): Promise<void> {
    this.stageTx(sync, members)
  }

  async accept(id: string, totals: Totals, now: number): Promise<void> {
    try {
      // An accepted sync must survive a power cut, like an accepted event: this commit syncs the WAL.
      this.sqlite.pragma('synchronous = FULL')
      this.acceptTx(id, totals, now)
    } finally {
      this.sqlite.pragma('synchronous = NORMAL')
    }
  }

  async discard(id: string): Promise<void> {
    this.discardTx(id)
  }

  async importing(startedBefore: number): Promise<string[]> {
    return this.sqlite.prepare(`SELECT id FROM syncs WHERE status = 'importing' AND started_at < ? ORDER BY rowid`).pluck().all(startedBefore) as string[]
  }

  async get(communityId: string, id: string): Promise<SyncRecord | undefined> {
    return this.sqlite.prepare('SELECT * FROM syncs WHERE community_id = ? AND id = ?').get(communityId, id) as SyncRecord | undefined
  }

  async recent(communityId: string, limit: number): Promise<SyncRecord[]> {
    return this.sqlite
      .prepare(`SELECT * FROM syncs WHERE community_id = ? AND status <> 'importing' ORDER BY started_at DESC, rowid DESC LIMIT ?`)
      .all(communityId, limit) as SyncRecord[]
  }

  async progress(id: string): Promise<SyncProgressRow[]> {
    return this.progressStmt.all(id) as SyncProgressRow[]
  }

  async finish(id: string, status: 'completed' | 'cancelled', counts: FinalCounts, now: number): Promise<void> {
    this.sqlite
      .prepare(
        `UPDATE syncs SET status = ?, done = ?, failed = ?, skipped = ?, kit_requests = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
      )
      .run(status, counts.done, counts.failed, counts.skipped, counts.kitRequests, now, now, id)
  }

  async pause(id: string, reason: ReasonCode, now: number): Promise<void> {
    this.pauseTx(id, reason, now)
  }

  async resume(id: string, now: number): Promise<void> {
    this.resumeTx(id, now)
  }

  async cancel(id: string, reason: ReasonCode, now: number): Promise<void> {
    this.cancelTx(id, reason, now)
  }

  async columnMapping(communityId: string): Promise<string | undefined> {
    return this.sqlite.prepare('SELECT mapping FROM sync_column_mappings WHERE community_id = ?').pluck().get(communityId) as string | undefined
  }

  async saveColumnMapping(communityId: string, mapping: string, now: number): Promise<void> {
    this.sqlite
      .prepare(
        `INSERT INTO sync_column_mappings (community_id, mapping, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (community_id) DO UPDATE SET mapping = excluded.mapping, updated_at = excluded.updated_at`,
      )
      .run(communityId, mapping, now)
  }
}
