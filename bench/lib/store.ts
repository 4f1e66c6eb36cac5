/**
 * Following deliveries while several instances share one database: the same questions as
 * DeliveryReader (deliveries.ts), asked asynchronously so they can be answered by PostgreSQL as
 * well as by the SQLite file. Read-only; the server owns the tables.
 */
import pg from 'pg'
import { DeliveryReader, type StatusCounts } from './deliveries.ts'
import { sleep } from './env.ts'

/** Where the instances keep their data: one PostgreSQL database, or one SQLite file they share. */
export type StorageTarget = { kind: 'postgres'; url: string } | { kind: 'sqlite'; path: string }

export interface Integrity {
  duplicateEvents: number
  duplicateDeliveries: number
  eventsWithoutDelivery: number
}

export interface DeliveryStore {
  counts(): Promise<StatusCounts>
  total(): Promise<number>
  eventRows(): Promise<number>
  storedIds(): Promise<Set<string>>
  integrity(): Promise<Integrity>
  /** Pending or retrying deliveries not queued behind a held delivery of the same member. */
  waitingUnblocked(): Promise<number>
  /** A few deliveries that are not terminal, for failure reports. */
  stuck(limit?: number): Promise<Record<string, unknown>[]>
  close(): Promise<void>
}

const emptyCounts = (): StatusCounts => ({ pending: 0, retrying: 0, held: 0, succeeded: 0, failed: 0, skipped: 0 })

/** Every count is cast to int in SQL: `pg` returns bigint as a string. */
class PgStore implements DeliveryStore {
  private readonly pool: pg.Pool

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 })
    this.pool.on('error', () => {})
  }

  private async one(sql: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(sql)
    return rows[0]?.n ?? 0
  }

  async counts(): Promise<StatusCounts> {
    const counts = emptyCounts()
    const { rows } = await this.pool.query<{ status: keyof StatusCounts; n: number }>('SELECT status, count(*)::int AS n FROM deliveries GROUP BY status')
    for (const row of rows) counts[row.status] = row.n
    return counts
  }

  total = () => this.one('SELECT count(*)::int AS n FROM deliveries')
  eventRows = () => this.one('SELECT count(*)::int AS n FROM events')

  async storedIds(): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM events')
    return new Set(rows.map((r) => r.id))
  }

  async integrity(): Promise<Integrity> {
    return {
      duplicateEvents: await this.one('SELECT count(*)::int AS n FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1) d'),
      duplicateDeliveries: await this.one('SELECT count(*)::int AS n FROM (SELECT event_id FROM deliveries GROUP BY community_id, event_id HAVING count(*) > 1) d'),
      eventsWithoutDelivery: await this.one(
        'SELECT count(*)::int AS n FROM events e WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.community_id = e.community_id AND d.event_id = e.id)',
      ),
    }
  }

  waitingUnblocked = () =>
    this.one(
      `SELECT count(*)::int AS n FROM deliveries d
        WHERE d.status IN ('pending', 'retrying')
          AND NOT EXISTS (SELECT 1 FROM deliveries h WHERE h.community_id = d.community_id AND h.member_id = d.member_id AND h.status = 'held')`,
    )

  async stuck(limit = 5): Promise<Record<string, unknown>[]> {
    const { rows } = await this.pool.query(
      `SELECT member_id, event_type, status, attempts, last_error,
              next_attempt_at::float8 - extract(epoch FROM now()) * 1000 AS due_in_ms,
              lease_owner IS NOT NULL AS leased, lease_until::float8 - extract(epoch FROM now()) * 1000 AS lease_left_ms
         FROM deliveries WHERE status NOT IN ('succeeded', 'failed', 'skipped') ORDER BY seq LIMIT $1`,
      [limit],
    )
    return rows as Record<string, unknown>[]
  }

  close = () => this.pool.end()
}

/** The SQLite reader behind the same asynchronous face. */
class SqliteStore implements DeliveryStore {
  constructor(private readonly reader: DeliveryReader) {}
  counts = async () => this.reader.counts()
  total = async () => this.reader.total()
  eventRows = async () => this.reader.eventRows()
  storedIds = async () => this.reader.storedIds()
  integrity = async () => this.reader.integrity()
  waitingUnblocked = async () => this.reader.waitingUnblocked()
  stuck = async (limit?: number) => this.reader.stuck(limit)
  close = async () => this.reader.close()
}

export function openStore(target: StorageTarget): DeliveryStore {
  return target.kind === 'postgres' ? new PgStore(target.url) : new SqliteStore(new DeliveryReader(target.path))
}

const terminal = (c: StatusCounts) => c.succeeded + c.failed + c.skipped

/**
 * Waits until at least `expected` deliveries exist and every one is terminal; throws after
 * `timeoutMs` with the counts and a few stuck deliveries in the message.
 */
export async function waitAllTerminal(
  store: DeliveryStore,
  expected: number,
  { timeoutMs, pollMs = 500, progressMs = 10_000, onProgress }: { timeoutMs: number; pollMs?: number; progressMs?: number; onProgress?: (c: StatusCounts) => void },
): Promise<StatusCounts> {
  const start = Date.now()
  let lastProgress = start
  for (;;) {
    const counts = await store.counts()
    const total = Object.values(counts).reduce((n, c) => n + c, 0)
    if (total >= expected && terminal(counts) === total) return counts
    if (Date.now() - start > timeoutMs) {
      const sample = (await store.stuck()).map((row) => `  ${JSON.stringify(row)}`).join('\n')
      throw new Error(`deliveries not terminal after ${Math.round(timeoutMs / 1000)} s (expected ${expected}): ${JSON.stringify(counts)}; the first of them:\n${sample}`)
    }
    if (onProgress && Date.now() - lastProgress >= progressMs) {
      lastProgress = Date.now()
      onProgress(counts)
    }
    await sleep(pollMs)
  }
}
