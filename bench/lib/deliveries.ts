/** Reads the server's SQLite file (read-only, WAL) to follow deliveries while the server runs. */
import Database from 'better-sqlite3'
import { sleep } from './env.ts'

export const TERMINAL = ['succeeded', 'failed', 'skipped'] as const

export type StatusCounts = Record<'pending' | 'retrying' | 'held' | 'succeeded' | 'failed' | 'skipped', number>

export class DeliveryReader {
  private readonly db: Database.Database

  constructor(path: string) {
    this.db = new Database(path, { readonly: true, fileMustExist: true })
  }

  counts(): StatusCounts {
    const counts: StatusCounts = { pending: 0, retrying: 0, held: 0, succeeded: 0, failed: 0, skipped: 0 }
    const rows = this.db.prepare('SELECT status, count(*) AS n FROM deliveries GROUP BY status').all() as {
      status: keyof StatusCounts
      n: number
    }[]
    for (const row of rows) counts[row.status] = row.n
    return counts
  }

  /** Deliveries of the community that are terminal (succeeded, failed, skipped). */
  terminalOf(communityId: string): number {
    return (
      this.db
        .prepare(`SELECT count(*) AS n FROM deliveries WHERE community_id = ? AND status IN ('succeeded', 'failed', 'skipped')`)
        .get(communityId) as { n: number }
    ).n
  }

  isTerminal(communityId: string, eventId: string): boolean {
    const row = this.db.prepare('SELECT status FROM deliveries WHERE community_id = ? AND event_id = ?').get(communityId, eventId) as
      { status: string } | undefined
    return row !== undefined && (TERMINAL as readonly string[]).includes(row.status)
  }

  total(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM deliveries').get() as { n: number }).n
  }

  eventRows(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
  }

  /** Event ids stored more than once (should be none), and ids stored with no delivery. */
  integrity(): { duplicateEvents: number; duplicateDeliveries: number; eventsWithoutDelivery: number } {
    const one = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n
    return {
      duplicateEvents: one('SELECT count(*) AS n FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1)'),
      duplicateDeliveries: one(
        'SELECT count(*) AS n FROM (SELECT event_id FROM deliveries GROUP BY community_id, event_id HAVING count(*) > 1)',
      ),
      eventsWithoutDelivery: one(
        'SELECT count(*) AS n FROM events e WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.community_id = e.community_id AND d.event_id = e.id)',
      ),
    }
  }

  /** Pending or retrying deliveries not queued behind a held delivery of the same member. */
  waitingUnblocked(): number {
    return (
      this.db
        .prepare(
          `SELECT count(*) AS n FROM deliveries d
            WHERE d.status IN ('pending', 'retrying')
              AND NOT EXISTS (SELECT 1 FROM deliveries h WHERE h.community_id = d.community_id AND h.member_id = d.member_id AND h.status = 'held')`,
        )
        .get() as { n: number }
    ).n
  }

  /** A few deliveries that are not terminal, with what the queue knows about them, for failure reports. */
  stuck(limit = 5): Record<string, unknown>[] {
    return this.db
      .prepare(
        `SELECT member_id, event_type, status, attempts, last_error,
                next_attempt_at - unixepoch('subsec') * 1000 AS due_in_ms,
                lease_owner IS NOT NULL AS leased, lease_until - unixepoch('subsec') * 1000 AS lease_left_ms
           FROM deliveries WHERE status NOT IN ('succeeded', 'failed', 'skipped') ORDER BY seq LIMIT ?`,
      )
      .all(limit) as Record<string, unknown>[]
  }

  storedIds(): Set<string> {
    return new Set((this.db.prepare('SELECT id FROM events').all() as { id: string }[]).map((r) => r.id))
  }

  kitRequests(): number {
    return (this.db.prepare('SELECT coalesce(sum(kit_requests), 0) AS n FROM deliveries').get() as { n: number }).n
  }

  /** Status and last error of the deliveries that did not succeed, for reports. */
  problems(limit = 5): { event_type: string; status: string; last_error: string | null }[] {
    return this.db
      .prepare(`SELECT event_type, status, last_error FROM deliveries WHERE status NOT IN ('succeeded') LIMIT ?`)
      .all(limit) as { event_type: string; status: string; last_error: string | null }[]
  }

  close(): void {
    this.db.close()
  }
}

const terminal = (c: StatusCounts) => c.succeeded + c.failed + c.skipped

/**
 * Waits until `expected` deliveries exist and every one is terminal. `onProgress` is called
 * every `progressMs` with the counts; throws after `timeoutMs` with the counts in the message.
 */
export async function waitTerminal(
  reader: DeliveryReader,
  expected: number,
  {
    timeoutMs,
    pollMs = 250,
    progressMs = 10_000,
    onProgress,
  }: { timeoutMs: number; pollMs?: number; progressMs?: number; onProgress?: (c: StatusCounts) => void },
): Promise<StatusCounts> {
  const start = Date.now()
  let lastProgress = start
  for (;;) {
    const counts = reader.counts()
    if (reader.total() >= expected && terminal(counts) === reader.total()) return counts
    if (Date.now() - start > timeoutMs) {
      const sample = reader
        .stuck()
        .map((row) => `  ${JSON.stringify(row)}`)
        .join('\n')
      throw new Error(
        `deliveries not terminal after ${Math.round(timeoutMs / 1000)} s: ${JSON.stringify(counts)}; the first of them:\n${sample}`,
      )
    }
    if (onProgress && Date.now() - lastProgress >= progressMs) {
      lastProgress = Date.now()
      onProgress(counts)
    }
    await sleep(pollMs)
  }
}
