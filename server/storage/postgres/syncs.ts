/**
 * The shared dialect's `syncs`, and the events and held deliveries a sync stages through the
 * queue's tables (the same columns the queue's intake writes). Raw SQL over the pool: `bigint`
 * columns come back from `pg` as strings, so rows are read through `toRecord`.
 */
import type pg from 'pg'
import type { OpenedPostgres } from '../../db/postgres.ts'
import { reasonWords, type ReasonCode } from '../../core/reasons.ts'
import { SNAPSHOT_PRIORITY } from '../../core/snapshot.ts'
import type { StagedSnapshot, SyncProgressRow, SyncRecord, SyncRepository } from '../../core/storage.ts'
import { withTransaction } from './transaction.ts'

const iso = (ms: number) => new Date(ms).toISOString()

type NewSync = Parameters<SyncRepository['create']>[0]
type StagedSync = Parameters<SyncRepository['stage']>[0]
type Totals = Parameters<SyncRepository['accept']>[1]
type FinalCounts = Parameters<SyncRepository['finish']>[2]

/** Members per INSERT statement: 4 parameters each, well under PostgreSQL's 65,535 per statement. */
const ROWS_PER_INSERT = 2000

/**
 * Not in flight: a delivery a consumer holds a lease on is left to finish when a sync pauses or is
 * cancelled. `$3` is the time now in the statements that use it.
 */
const NOT_LEASED = '(lease_until IS NULL OR lease_until < $3)'

type Stored = Record<keyof SyncRecord, unknown>

const num = (v: unknown) => Number(v)
const numOrNull = (v: unknown) => (v === null ? null : Number(v))

function toRecord(row: Stored): SyncRecord {
  return {
    id: row.id as string,
    community_id: row.community_id as string,
    status: row.status as SyncRecord['status'],
    format: row.format as SyncRecord['format'],
    started_at: num(row.started_at),
    total: num(row.total),
    refused: num(row.refused),
    refused_examples: row.refused_examples as string,
    done: numOrNull(row.done),
    failed: numOrNull(row.failed),
    skipped: numOrNull(row.skipped),
    kit_requests: numOrNull(row.kit_requests),
    finished_at: numOrNull(row.finished_at),
    updated_at: num(row.updated_at),
  }
}

/** `($k, $k+1, …)` placeholders for `perRow` parameters of row `i`, after the `shared` ones. */
const rowParams = (i: number, perRow: number, shared: number) =>
  Array.from({ length: perRow }, (_, j) => `$${shared + i * perRow + j + 1}`)

export class PostgresSyncs implements SyncRepository {
  private readonly pool: pg.Pool

  constructor({ pool }: OpenedPostgres) {
    this.pool = pool
  }

  private transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    return withTransaction(this.pool, work)
  }

  async create(sync: NewSync): Promise<void> {
    await this.pool.query(
      `INSERT INTO syncs (id, community_id, status, format, started_at, updated_at) VALUES ($1, $2, 'importing', $3, $4, $4)`,
      [sync.id, sync.communityId, sync.format, sync.startedAt],
    )
  }

  async stage(sync: StagedSync, members: StagedSnapshot[]): Promise<void> {
    await this.transaction(async (client) => {
      for (let start = 0; start < members.length; start += ROWS_PER_INSERT) {
        const chunk = members.slice(start, start + ROWS_PER_INSERT)
        await client.query(
          `INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
           VALUES ${chunk.map((_, i) => {
             const [id, memberId, memberEmail, payload] = rowParams(i, 4, 3)
             return `($1, ${id}, $2, ${memberId}, ${memberEmail}, $3, ${payload}, $3)`
           }).join(', ')}`,
          [sync.communityId, sync.eventType, sync.startedAt, ...chunk.flatMap((m) => [m.eventId, m.memberId, m.memberEmail, m.payload])],
        )
        await client.query(
          `INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status,
             last_error, reason, next_attempt_at, received_at, created_at, updated_at, priority, sync_id)
           VALUES ${chunk.map((_, i) => {
             const [id, eventId, memberId, memberEmail] = rowParams(i, 4, 8)
             return `(${id}, $1, ${eventId}, $2, ${memberId}, ${memberEmail}, $3, 'held', $4, $8, $3, $3, $5, $5, $6, $7)`
           }).join(', ')}`,
          [
            sync.communityId,
            sync.eventType,
            sync.startedAt,
            reasonWords(sync.heldReason),
            iso(sync.startedAt),
            SNAPSHOT_PRIORITY,
            sync.id,
            sync.heldReason,
            ...chunk.flatMap((m) => [m.deliveryId, m.eventId, m.memberId, m.memberEmail]),
          ],
        )
      }
    })
  }

  async accept(id: string, totals: Totals, now: number): Promise<void> {
    // One commit, durable when it returns (PostgreSQL's synchronous_commit): an accepted sync
    // survives a power cut, like an accepted event.
    await this.transaction(async (client) => {
      await client.query(
        `UPDATE deliveries SET status = 'pending', last_error = NULL, reason = NULL, next_attempt_at = $2 WHERE sync_id = $1 AND status = 'held'`,
        [id, now],
      )
      await client.query(
        `UPDATE syncs SET status = 'running', total = $2, refused = $3, refused_examples = $4, updated_at = $5 WHERE id = $1`,
        [id, totals.total, totals.refused, totals.refusedExamples, now],
      )
    })
  }

  async discard(id: string): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(
        `DELETE FROM events e USING deliveries d WHERE d.sync_id = $1 AND e.community_id = d.community_id AND e.id = d.event_id`,
        [id],
      )
      await client.query('DELETE FROM deliveries WHERE sync_id = $1', [id])
      await client.query('DELETE FROM syncs WHERE id = $1', [id])
    })
  }

  async importing(startedBefore: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(`SELECT id FROM syncs WHERE status = 'importing' AND started_at < $1 ORDER BY started_at, id`, [startedBefore])
    return rows.map((r) => r.id)
  }

  async get(communityId: string, id: string): Promise<SyncRecord | undefined> {
    const { rows } = await this.pool.query<Stored>('SELECT * FROM syncs WHERE community_id = $1 AND id = $2', [communityId, id])
    return rows[0] && toRecord(rows[0])
  }

  /**
   * Newest first. PostgreSQL keeps no insertion order (SQLite breaks ties with its rowid), so syncs
   * started in the same millisecond come out by id, descending.
   */
  async recent(communityId: string, limit: number): Promise<SyncRecord[]> {
    const { rows } = await this.pool.query<Stored>(
      `SELECT * FROM syncs WHERE community_id = $1 AND status <> 'importing' ORDER BY started_at DESC, id DESC LIMIT $2`,
      [communityId, limit],
    )
    return rows.map(toRecord)
  }

  async progress(id: string): Promise<SyncProgressRow[]> {
    const { rows } = await this.pool.query<SyncProgressRow>(
      `SELECT status, count(*)::int AS n, coalesce(sum(kit_requests), 0)::float8 AS k
         FROM deliveries WHERE sync_id = $1 GROUP BY status ORDER BY status`,
      [id],
    )
    return rows
  }

  async finish(id: string, status: 'completed' | 'cancelled', counts: FinalCounts, now: number): Promise<void> {
    await this.pool.query(
      `UPDATE syncs SET status = $2, done = $3, failed = $4, skipped = $5, kit_requests = $6, finished_at = $7, updated_at = $7 WHERE id = $1`,
      [id, status, counts.done, counts.failed, counts.skipped, counts.kitRequests, now],
    )
  }

  async pause(id: string, reason: ReasonCode, now: number): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(
        `UPDATE deliveries SET status = 'held', last_error = $2, reason = $5, updated_at = $4
          WHERE sync_id = $1 AND status IN ('pending', 'retrying') AND ${NOT_LEASED}`,
        [id, reasonWords(reason), now, iso(now), reason],
      )
      await client.query(`UPDATE syncs SET status = 'paused', updated_at = $2 WHERE id = $1`, [id, now])
    })
  }

  async resume(id: string, now: number): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(
        `UPDATE deliveries SET status = 'pending', last_error = NULL, reason = NULL, next_attempt_at = $2, updated_at = $3
          WHERE sync_id = $1 AND status = 'held'`,
        [id, now, iso(now)],
      )
      await client.query(`UPDATE syncs SET status = 'running', updated_at = $2 WHERE id = $1`, [id, now])
    })
  }

  async cancel(id: string, reason: ReasonCode, now: number): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(
        `UPDATE deliveries SET status = 'skipped', last_error = $2, reason = $5, updated_at = $4
          WHERE sync_id = $1 AND status IN ('pending', 'retrying', 'held') AND ${NOT_LEASED}`,
        [id, reasonWords(reason), now, iso(now), reason],
      )
      await client.query(`UPDATE syncs SET status = 'cancelled', updated_at = $2 WHERE id = $1`, [id, now])
    })
  }

  async columnMapping(communityId: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ mapping: string }>('SELECT mapping FROM sync_column_mappings WHERE community_id = $1', [communityId])
    return rows[0]?.mapping
  }

  async saveColumnMapping(communityId: string, mapping: string, now: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO sync_column_mappings (community_id, mapping, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (community_id) DO UPDATE SET mapping = excluded.mapping, updated_at = excluded.updated_at`,
      [communityId, mapping, now],
    )
  }
}
