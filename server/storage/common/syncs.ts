/**
 * `syncs`, and the events and held deliveries a sync stages through the queue's tables (the same
 * columns the queue's intake writes), written once for both dialects.
 */
import { sql, type SQL, type SQLWrapper } from 'drizzle-orm'
import { reasonWords, type ReasonCode } from '../../core/reasons.ts'
import { SNAPSHOT_PRIORITY } from '../../core/snapshot.ts'
import type { StagedSnapshot, SyncProgressRow, SyncRecord, SyncRepository } from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'
import { iso } from './values.ts'

type NewSync = Parameters<SyncRepository['create']>[0]
type StagedSync = Parameters<SyncRepository['stage']>[0]
type Totals = Parameters<SyncRepository['accept']>[1]
type FinalCounts = Parameters<SyncRepository['finish']>[2]

/** Members per INSERT statement: well under either dialect's limit of parameters per statement. */
const ROWS_PER_INSERT = 1000

/** Not in flight: a delivery a consumer holds a lease on is left to finish when a sync pauses or is cancelled. */
const notLeased = (now: number) => sql`(lease_until IS NULL OR lease_until < ${now})`

const count = (status: string) => sql`(SELECT count(*) FROM deliveries d WHERE d.sync_id = syncs.id AND d.status = ${status})`

/**
 * The sync (`syncId`, an SQL value) has no delivery left to do: a running or cancelled one is
 * finished and its final counts kept. Run where that happens: a sync's last delivery settles, or
 * a cancel or resume finds nothing left (reads never write).
 */
export const finishIfDone = (syncId: SQLWrapper, now: number | SQLWrapper) => sql`
  UPDATE syncs SET status = CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'completed' END,
         done = ${count('succeeded')}, failed = ${count('failed')}, skipped = ${count('skipped')},
         kit_requests = (SELECT coalesce(sum(d.kit_requests), 0) FROM deliveries d WHERE d.sync_id = syncs.id),
         finished_at = ${now}, updated_at = ${now}
   WHERE id = ${syncId} AND finished_at IS NULL AND status IN ('running', 'cancelled')
     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.sync_id = syncs.id AND d.status IN ('pending', 'retrying', 'held'))`

export class SyncStore implements SyncRepository {
  constructor(private readonly run: SqlRunner) {}

  async create(sync: NewSync): Promise<void> {
    await this.run.run(
      sql`INSERT INTO syncs (id, community_id, status, format, started_at, updated_at)
          VALUES (${sync.id}, ${sync.communityId}, 'importing', ${sync.format}, ${sync.startedAt}, ${sync.startedAt})`,
    )
  }

  async stage(sync: StagedSync, members: StagedSnapshot[]): Promise<void> {
    const { communityId, eventType, startedAt: at } = sync
    const statements: SQL[] = []
    for (let start = 0; start < members.length; start += ROWS_PER_INSERT) {
      const chunk = members.slice(start, start + ROWS_PER_INSERT)
      const events = chunk.map(
        (m) => sql`(${communityId}, ${m.eventId}, ${eventType}, ${m.memberId}, ${m.memberEmail}, ${at}, ${m.payload}, ${at})`,
      )
      statements.push(sql`INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
                          VALUES ${sql.join(events, sql`, `)}`)
      const deliveries = chunk.map(
        (m) => sql`(${m.deliveryId}, ${communityId}, ${m.eventId}, ${eventType}, ${m.memberId}, ${m.memberEmail}, ${at}, 'held',
                    ${reasonWords(sync.heldReason)}, ${sync.heldReason}, ${at}, ${at}, ${iso(at)}, ${iso(at)}, ${SNAPSHOT_PRIORITY}, ${sync.id})`,
      )
      statements.push(sql`INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status,
                            last_error, reason, next_attempt_at, received_at, created_at, updated_at, priority, sync_id)
                          VALUES ${sql.join(deliveries, sql`, `)}`)
    }
    await this.run.batch(statements)
  }

  async accept(id: string, totals: Totals, now: number): Promise<void> {
    // An accepted sync must survive a power cut, like an accepted event.
    await this.run.batch(
      [
        sql`UPDATE deliveries SET status = 'pending', last_error = NULL, reason = NULL, next_attempt_at = ${now} WHERE sync_id = ${id} AND status = 'held'`,
        sql`UPDATE syncs SET status = 'running', total = ${totals.total}, refused = ${totals.refused},
              refused_examples = ${totals.refusedExamples}, updated_at = ${now} WHERE id = ${id}`,
      ],
      { durable: true },
    )
  }

  async discard(id: string): Promise<void> {
    await this.run.batch([
      sql`DELETE FROM events WHERE (community_id, id) IN (SELECT community_id, event_id FROM deliveries WHERE sync_id = ${id})`,
      sql`DELETE FROM deliveries WHERE sync_id = ${id}`,
      sql`DELETE FROM syncs WHERE id = ${id}`,
    ])
  }

  async importing(startedBefore: number): Promise<string[]> {
    const rows = await this.run.all<{ id: string }>(
      sql`SELECT id FROM syncs WHERE status = 'importing' AND started_at < ${startedBefore} ORDER BY started_at, ${this.run.insertionOrder}`,
    )
    return rows.map((r) => r.id)
  }

  async get(communityId: string, id: string): Promise<SyncRecord | undefined> {
    const [row] = await this.run.all<SyncRecord>(sql`SELECT * FROM syncs WHERE community_id = ${communityId} AND id = ${id}`)
    return row
  }

  /** Newest first; syncs started in the same millisecond in reverse insertion order (by id where the dialect keeps none). */
  recent(communityId: string, limit: number): Promise<SyncRecord[]> {
    return this.run.all<SyncRecord>(
      sql`SELECT * FROM syncs WHERE community_id = ${communityId} AND status <> 'importing'
           ORDER BY started_at DESC, ${this.run.insertionOrder} DESC LIMIT ${limit}`,
    )
  }

  progress(id: string): Promise<SyncProgressRow[]> {
    return this.run.all<SyncProgressRow>(
      sql`SELECT status, count(*) AS n, coalesce(sum(kit_requests), 0) AS k FROM deliveries WHERE sync_id = ${id} GROUP BY status ORDER BY status`,
    )
  }

  async finish(id: string, status: 'completed' | 'cancelled', counts: FinalCounts, now: number): Promise<void> {
    await this.run.run(
      sql`UPDATE syncs SET status = ${status}, done = ${counts.done}, failed = ${counts.failed}, skipped = ${counts.skipped},
            kit_requests = ${counts.kitRequests}, finished_at = ${now}, updated_at = ${now} WHERE id = ${id}`,
    )
  }

  /** Waiting deliveries not in flight are held, with the reason's code and words. */
  async pause(id: string, reason: ReasonCode, now: number): Promise<void> {
    await this.run.batch([
      sql`UPDATE deliveries SET status = 'held', last_error = ${reasonWords(reason)}, reason = ${reason}, updated_at = ${iso(now)}
           WHERE sync_id = ${id} AND status IN ('pending', 'retrying') AND ${notLeased(now)}`,
      sql`UPDATE syncs SET status = 'paused', updated_at = ${now} WHERE id = ${id}`,
    ])
  }

  async resume(id: string, now: number): Promise<void> {
    await this.run.batch([
      sql`UPDATE deliveries SET status = 'pending', last_error = NULL, reason = NULL, next_attempt_at = ${now}, updated_at = ${iso(now)}
           WHERE sync_id = ${id} AND status = 'held'`,
      sql`UPDATE syncs SET status = 'running', updated_at = ${now} WHERE id = ${id}`,
      // Its last deliveries may have settled while it was paused.
      finishIfDone(sql`${id}`, now),
    ])
  }

  /** Waiting and held deliveries not in flight are skipped, with the reason's code and words. */
  async cancel(id: string, reason: ReasonCode, now: number): Promise<void> {
    await this.run.batch([
      sql`UPDATE deliveries SET status = 'skipped', last_error = ${reasonWords(reason)}, reason = ${reason}, updated_at = ${iso(now)}
           WHERE sync_id = ${id} AND status IN ('pending', 'retrying', 'held') AND ${notLeased(now)}`,
      sql`UPDATE syncs SET status = 'cancelled', updated_at = ${now} WHERE id = ${id}`,
      finishIfDone(sql`${id}`, now),
    ])
  }

  async columnMapping(communityId: string): Promise<string | undefined> {
    const [row] = await this.run.all<{ mapping: string }>(sql`SELECT mapping FROM sync_column_mappings WHERE community_id = ${communityId}`)
    return row?.mapping
  }

  async saveColumnMapping(communityId: string, mapping: string, now: number): Promise<void> {
    await this.run.run(
      sql`INSERT INTO sync_column_mappings (community_id, mapping, updated_at) VALUES (${communityId}, ${mapping}, ${now})
          ON CONFLICT (community_id) DO UPDATE SET mapping = excluded.mapping, updated_at = excluded.updated_at`,
    )
  }
}
