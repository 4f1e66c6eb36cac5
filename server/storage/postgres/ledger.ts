/**
 * Kit's request budget counted across every instance that shares the database. Each request about
 * to be sent takes a row in `kit_budget_ledger`; the row holds its slot until a window after the
 * answer (`done`), or — when the instance died before answering — until `staleMs` plus a window
 * after it was taken. Takers of one credential take turns on an advisory lock, so two instances
 * never both see the last free slot.
 *
 * The database clock is the one clock every instance shares: rows are stamped with it, and the
 * times handed back are turned into this process's `Date.now()` by the offset measured on the
 * same call (so a skewed host clock changes nothing but that offset).
 */
import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { BlockPenalty, BudgetLedger, BudgetTicket } from '../../core/storage.ts'
import { withTransaction } from '../common/transaction.ts'

export interface PostgresBudgetLedgerOptions {
  /**
   * The longest a request can be in flight (default 60 000 ms): past it plus a window, a ticket
   * that was never done frees anyway. Keep it above the Kit client's timeout per attempt.
   */
  staleMs?: number
}

const DB_NOW = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

// Under the credential's lock: sweep the rows that freed, refuse while a 429 block holds, count the
// rest and take a row when there is room. A request not done yet frees a window after its answer,
// so no sooner than a window from now: that is when to ask again, not when its stale limit ends.
const TAKE = `
WITH clock AS MATERIALIZED (SELECT ${DB_NOW} AS now),
block AS (
  SELECT b.until FROM kit_budget_blocks b, clock c WHERE b.credential_id = $1 AND b.until > c.now
),
swept AS (
  DELETE FROM kit_budget_ledger l USING clock c WHERE l.credential_id = $1 AND l.frees_at <= c.now
),
live AS (
  SELECT count(*)::int AS n,
         array_agg(least(l.frees_at, c.now + $3::bigint) ORDER BY least(l.frees_at, c.now + $3::bigint)) AS frees
    FROM clock c JOIN kit_budget_ledger l ON l.credential_id = $1 AND l.frees_at > c.now
),
taken AS (
  INSERT INTO kit_budget_ledger (id, credential_id, taken_at, frees_at)
  SELECT $4, $1, c.now, c.now + $5::bigint FROM clock c, live
   WHERE live.n < $2::int AND NOT EXISTS (SELECT 1 FROM block)
  RETURNING id
)
SELECT c.now::float8 AS now,
       (SELECT max(until) FROM block)::float8 AS blocked_until,
       (live.frees[live.n - $2::int + 1])::float8 AS frees_at,
       EXISTS (SELECT 1 FROM taken) AS taken,
       coalesce((SELECT b.strikes FROM kit_budget_blocks b WHERE b.credential_id = $1), 0)::int AS strikes
  FROM clock c, live`

// The window the ticket was taken for is what its row holds beyond the stale limit.
const DONE = `
UPDATE kit_budget_ledger SET frees_at = ${DB_NOW} + (frees_at - taken_at - $2::bigint) WHERE id = $1`

// A 429 while a block holds leaves it as it is; the first one after it ended is one more strike,
// and its block is the first one's length doubled per strike before it, at most the longest.
const BLOCK = `
WITH clock AS MATERIALIZED (SELECT ${DB_NOW} AS now)
INSERT INTO kit_budget_blocks AS b (credential_id, until, strikes)
SELECT $1, c.now + $2::bigint, 1 FROM clock c
ON CONFLICT (credential_id) DO UPDATE SET
  strikes = CASE WHEN b.until > (SELECT now FROM clock) THEN b.strikes ELSE b.strikes + 1 END,
  until = CASE WHEN b.until > (SELECT now FROM clock) THEN b.until
               ELSE (SELECT now FROM clock) + least($3::bigint, $2::bigint * power(2, least(b.strikes, 30))::bigint) END
RETURNING b.until::float8 AS until, b.strikes::int AS strikes, (SELECT now FROM clock)::float8 AS now`

// Only a block that has ended: a 429 recorded meanwhile by another instance stands.
const FORGIVE = `DELETE FROM kit_budget_blocks WHERE credential_id = $1 AND until <= ${DB_NOW}`

interface TakeRow {
  now: number
  blocked_until: number | null
  frees_at: number | null
  taken: boolean
  strikes: number
}

export class PostgresBudgetLedger implements BudgetLedger {
  readonly staleMs: number
  readonly #pool: pg.Pool

  constructor(pool: pg.Pool, options: PostgresBudgetLedgerOptions = {}) {
    const staleMs = options.staleMs ?? 60_000
    if (!Number.isFinite(staleMs) || staleMs < 0) throw new RangeError('PostgresBudgetLedger staleMs must be a number ≥ 0')
    this.#pool = pool
    this.staleMs = Math.ceil(staleMs)
  }

  async take(
    credentialId: string,
    capacity: number,
    windowMs: number,
  ): Promise<{ ticket: BudgetTicket; strikes: number } | { until: number }> {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('A Kit budget take needs a capacity of at least 1')
    const window = Math.ceil(windowMs)
    const id = randomUUID()
    const row = await withTransaction(this.#pool, async (client) => {
      // Its own statement: a statement sees the rows committed before it started, so the one that
      // counts must start after the lock is held.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [credentialId])
      return (await client.query<TakeRow>(TAKE, [credentialId, capacity, window, id, this.staleMs + window])).rows[0]
    })
    if (!row) throw new Error('The Kit budget ledger query returned no row: check the kit_budget_ledger migration')
    if (row.taken) return { ticket: { id }, strikes: row.strikes }
    const local = Date.now()
    // Null when the window has room (refused by a block only) or no block holds.
    const freesAt = Math.max(row.blocked_until ?? 0, row.frees_at ?? 0)
    return { until: local + Math.max(1, freesAt - row.now) }
  }

  async done(ticket: BudgetTicket): Promise<void> {
    await this.#pool.query(DONE, [ticket.id, this.staleMs])
  }

  async block(credentialId: string, penalty: BlockPenalty): Promise<{ until: number; strikes: number }> {
    const firstMs = Math.max(1, Math.ceil(penalty.firstMs))
    const { rows } = await this.#pool.query<{ until: number; strikes: number; now: number }>(BLOCK, [
      credentialId,
      firstMs,
      Math.max(firstMs, Math.ceil(penalty.maxMs)),
    ])
    const row = rows[0]
    if (!row) throw new Error('The Kit budget block query returned no row: check the kit_budget_blocks migration')
    return { until: Date.now() + Math.max(0, row.until - row.now), strikes: row.strikes }
  }

  async forgive(credentialId: string): Promise<void> {
    await this.#pool.query(FORGIVE, [credentialId])
  }
}
