/**
 * Request allowances counted across every instance: one row per key and fixed window, counted with
 * a single upsert so that two instances never both see the last request of an allowance. The
 * database clock opens and closes windows (the one clock every instance shares), and keys are
 * stored as a digest: no user id or address in the table, and no byte PostgreSQL refuses.
 */
import { createHash } from 'node:crypto'
import type pg from 'pg'
import type { RateLimitCounter } from '../../core/storage.ts'

const DB_NOW = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

/** A window that ended more than this long ago is deleted, at most once per this period per instance. */
const SWEEP_EVERY_MS = 60_000

// `excluded.resets_at - window` is this statement's clock reading: a window that has ended starts
// again at one request, a running one counts on.
const HIT = `
WITH clock AS MATERIALIZED (SELECT ${DB_NOW} AS now)
INSERT INTO rate_limits AS r (key, hits, resets_at)
SELECT $1, 1, c.now + $2::bigint FROM clock c
ON CONFLICT (key) DO UPDATE SET
  hits = CASE WHEN r.resets_at <= excluded.resets_at - $2::bigint THEN 1 ELSE r.hits + 1 END,
  resets_at = CASE WHEN r.resets_at <= excluded.resets_at - $2::bigint THEN excluded.resets_at ELSE r.resets_at END
RETURNING r.hits, (r.resets_at - (SELECT now FROM clock))::float8 AS resets_in`

const SWEEP = `DELETE FROM rate_limits WHERE resets_at < ${DB_NOW} - ${SWEEP_EVERY_MS}`

export class PgRateLimits implements RateLimitCounter {
  #lastSweep = Date.now()

  constructor(private readonly pool: pg.Pool) {}

  async hit(key: string, windowMs: number): Promise<{ hits: number; resetsInMs: number }> {
    const digest = createHash('sha256').update(key).digest('base64url')
    const { rows } = await this.pool.query<{ hits: number; resets_in: number }>(HIT, [digest, Math.ceil(windowMs)])
    const row = rows[0]
    if (!row) throw new Error('The rate limit query returned no row: check the rate_limits migration')
    if (Date.now() - this.#lastSweep >= SWEEP_EVERY_MS) {
      this.#lastSweep = Date.now()
      await this.pool.query(SWEEP)
    }
    return { hits: row.hits, resetsInMs: Math.max(0, row.resets_in) }
  }
}
