/**
 * Following deliveries while several instances share one PostgreSQL database: the same questions
 * as DeliveryReader (deliveries.ts) asks of one instance's SQLite file. Read-only; the server owns
 * the tables. (Several processes on one SQLite file is no supported setup: the embedded queue
 * takes back every lease at start, so the cluster tools run on PostgreSQL only.)
 */
import pg from 'pg'
import type { StatusCounts } from './deliveries.ts'
import { sleep } from './env.ts'

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
  /** Every delivery of one member in the order they were stored, for a member Kit has wrong. */
  memberHistory(memberId: string): Promise<MemberDelivery[]>
  close(): Promise<void>
}

export interface MemberDelivery {
  eventType: string
  /** ms after the member's first event. */
  eventTime: number
  status: string
  attempts: number
  lastError: string | null
  /** ms after the member's first delivery was stored. */
  storedAfterMs: number
}

const emptyCounts = (): StatusCounts => ({ pending: 0, retrying: 0, held: 0, succeeded: 0, failed: 0, skipped: 0 })

/** Every count is cast to int in SQL: `pg` returns bigint as a string. */
export class PgStore implements DeliveryStore {
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
    const { rows } = await this.pool.query<{ status: keyof StatusCounts; n: number }>(
      'SELECT status, count(*)::int AS n FROM deliveries GROUP BY status',
    )
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
      duplicateDeliveries: await this.one(
        'SELECT count(*)::int AS n FROM (SELECT event_id FROM deliveries GROUP BY community_id, event_id HAVING count(*) > 1) d',
      ),
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

  async memberHistory(memberId: string): Promise<MemberDelivery[]> {
    // created_at is the ISO time the delivery was stored; epoch ms as float8 fit a double exactly.
    const { rows } = await this.pool.query<MemberDelivery>(
      `SELECT event_type AS "eventType",
              (event_time - min(event_time) OVER ())::float8 AS "eventTime",
              status, attempts::int AS attempts, last_error AS "lastError",
              round(extract(epoch FROM created_at::timestamptz - min(created_at::timestamptz) OVER ()) * 1000)::float8 AS "storedAfterMs"
         FROM deliveries WHERE member_id = $1 ORDER BY seq`,
      [memberId],
    )
    return rows
  }

  close = () => this.pool.end()
}

export const openStore = (url: string): DeliveryStore => new PgStore(url)

const terminal = (c: StatusCounts) => c.succeeded + c.failed + c.skipped

/**
 * Waits until at least `expected` deliveries exist and every one is terminal; throws after
 * `timeoutMs` with the counts and a few stuck deliveries in the message.
 */
export async function waitAllTerminal(
  store: DeliveryStore,
  expected: number,
  {
    timeoutMs,
    pollMs = 500,
    progressMs = 10_000,
    onProgress,
  }: { timeoutMs: number; pollMs?: number; progressMs?: number; onProgress?: (c: StatusCounts) => void },
): Promise<StatusCounts> {
  const start = Date.now()
  let lastProgress = start
  for (;;) {
    const counts = await store.counts()
    const total = Object.values(counts).reduce((n, c) => n + c, 0)
    if (total >= expected && terminal(counts) === total) return counts
    if (Date.now() - start > timeoutMs) {
      const sample = (await store.stuck()).map((row) => `  ${JSON.stringify(row)}`).join('\n')
      throw new Error(
        `deliveries not terminal after ${Math.round(timeoutMs / 1000)} s (expected ${expected}): ${JSON.stringify(counts)}; the first of them:\n${sample}`,
      )
    }
    if (onProgress && Date.now() - lastProgress >= progressMs) {
      lastProgress = Date.now()
      onProgress(counts)
    }
    await sleep(pollMs)
  }
}
