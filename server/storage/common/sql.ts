/**
 * The one place the two dialects differ in running a statement. Shared storage code writes each
 * query once with drizzle's `sql` template (placeholders become `?` or `$n` as the dialect wants)
 * and runs it through a `SqlRunner`; what SQLite and PostgreSQL spell differently is a small piece
 * here (`anyOf`, `contains`, `byteOrder`, `insertionOrder`, durable commits).
 *
 * Rows come back alike from both: PostgreSQL's `bigint` and `numeric` values (counts, sums, epoch
 * milliseconds) are read as JavaScript numbers, as SQLite gives them.
 */
import type Database from 'better-sqlite3'
import { fillPlaceholders, sql, type SQL, type SQLWrapper } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import { SQLiteSyncDialect } from 'drizzle-orm/sqlite-core'
import pg from 'pg'
import type { Dialect } from '../../core/storage.ts'
import { withTransaction } from './transaction.ts'

/** What one statement of a batch gave: its rows (for a query) and how many rows it changed. */
export interface Ran {
  rows: Record<string, unknown>[]
  changes: number
}

export interface SqlRunner {
  readonly dialect: Dialect
  all<T>(query: SQL): Promise<T[]>
  /** How many rows the statement changed. */
  run(query: SQL): Promise<number>
  /**
   * The statements in order in one transaction. `durable`: the commit must survive a power cut,
   * not just a crash, when it returns.
   */
  batch(queries: SQL[], options?: { durable?: boolean }): Promise<Ran[]>
  /** Renders the statement once; each call fills its `sql.placeholder`s and runs it (for hot paths). */
  prepare(query: SQL): (values: Record<string, unknown>) => Promise<Ran>
  /** `column` is one of `values`: a list, or a placeholder to fill with `list(values)`. */
  anyOf(column: SQL, values: readonly string[] | SQLWrapper): SQL
  /** A list of values as `anyOf` takes it through a placeholder. */
  list(values: readonly string[]): unknown
  /** `needle` occurs in `haystack`, matched literally (no wildcards). */
  contains(haystack: SQL, needle: string): SQL
  /** Makes the planner walk this index, where the dialect lets a query name one (PostgreSQL does not). */
  indexedBy(index: string): SQL
  /** The column, kept from choosing the index (SQLite's planner would otherwise take it over a better one). */
  unindexed(column: SQL): SQL
  /** What a text ORDER BY adds to sort by bytes, as SQLite always does. */
  readonly byteOrder: SQL
  /** Breaks ties between rows of one table in the order they were inserted, or by key where the dialect keeps no such order. */
  readonly insertionOrder: SQL
}

const isList = (values: readonly string[] | SQLWrapper): values is readonly string[] => Array.isArray(values)

/** Runs a prepared SQLite statement: its rows if it reads, else how many rows it changed. */
const ranBy = (statement: Database.Statement, params: unknown[]): Ran =>
  statement.reader
    ? { rows: statement.all(...params) as Record<string, unknown>[], changes: 0 }
    : { rows: [], changes: statement.run(...params).changes }

/** Prepared statements kept per SQL text; multi-row inserts vary in length, so the cache is bounded. */
const STATEMENT_CACHE = 256

/**
 * SQLite runs a statement at once, so a transaction's (synchronous) function can run shared
 * statements too; `prepare` renders one once, for hot paths, with `sql.placeholder`s filled per run.
 */
export interface SqliteRunner extends SqlRunner {
  now(query: SQL): Ran
  prepareNow(query: SQL): (values: Record<string, unknown>) => Ran
}

export function sqliteRunner(sqlite: Database.Database): SqliteRunner {
  const dialect = new SQLiteSyncDialect()
  const statements = new Map<string, Database.Statement>()
  const prepare = (query: SQL) => {
    const { sql: text, params } = dialect.sqlToQuery(query)
    let statement = statements.get(text)
    if (!statement) {
      if (statements.size >= STATEMENT_CACHE) statements.clear()
      statement = sqlite.prepare(text)
      statements.set(text, statement)
    }
    return { statement, params }
  }
  const exec = (query: SQL): Ran => {
    const { statement, params } = prepare(query)
    return ranBy(statement, params)
  }
  const prepareNow = (query: SQL) => {
    const { sql: text, params } = dialect.sqlToQuery(query)
    const statement = sqlite.prepare(text)
    return (values: Record<string, unknown>): Ran => ranBy(statement, fillPlaceholders(params, values))
  }
  const inTransaction = sqlite.transaction((queries: SQL[]) => queries.map(exec))
  return {
    dialect: 'sqlite',
    now: exec,
    prepareNow,
    prepare: (query) => {
      const run = prepareNow(query)
      return async (values) => run(values)
    },
    all: async <T>(query: SQL) => exec(query).rows as T[],
    run: async (query) => exec(query).changes,
    batch: async (queries, options = {}) => {
      if (!options.durable) return inTransaction(queries)
      try {
        // This commit syncs the WAL, and with it everything committed before.
        sqlite.pragma('synchronous = FULL')
        return inTransaction(queries)
      } finally {
        sqlite.pragma('synchronous = NORMAL')
      }
    },
    anyOf: (column, values) => sql`${column} IN (SELECT value FROM json_each(${isList(values) ? JSON.stringify(values) : values}))`,
    list: (values) => JSON.stringify(values),
    contains: (haystack, needle) => sql`instr(${haystack}, ${needle}) > 0`,
    unindexed: (column) => sql`+${column}`,
    indexedBy: (index) => sql.raw(`INDEXED BY ${index}`),
    byteOrder: sql``,
    insertionOrder: sql.raw('rowid'),
  }
}

const INT8 = 20
const NUMERIC = 1700
const numbersAsNumbers = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC ? Number : (pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown),
}

const pgDialect = new PgDialect()

async function queryText(client: pg.Pool | pg.PoolClient, text: string, values: unknown[]): Promise<Ran> {
  const result = await client.query({ text, values, types: numbersAsNumbers } as pg.QueryConfig)
  return { rows: result.rows as Record<string, unknown>[], changes: result.rowCount ?? 0 }
}

/** Runs a shared statement on a pool, or on a client inside a transaction. */
export async function queryPostgres(client: pg.Pool | pg.PoolClient, query: SQL): Promise<Ran> {
  const { sql: text, params } = pgDialect.sqlToQuery(query)
  return queryText(client, text, params)
}

/** PostgreSQL commits are durable when they return (synchronous_commit). */
export function postgresRunner(pool: pg.Pool): SqlRunner {
  return {
    dialect: 'postgres',
    all: async <T>(query: SQL) => (await queryPostgres(pool, query)).rows as T[],
    run: async (query) => (await queryPostgres(pool, query)).changes,
    batch: (queries) =>
      withTransaction(pool, async (client) => {
        const results: Ran[] = []
        for (const query of queries) results.push(await queryPostgres(client, query))
        return results
      }),
    prepare: (query) => {
      const { sql: text, params } = pgDialect.sqlToQuery(query)
      return (values) => queryText(pool, text, fillPlaceholders(params, values))
    },
    anyOf: (column, values) => sql`${column} = ANY(${isList(values) ? sql.param(values) : values}::text[])`,
    list: (values) => values,
    contains: (haystack, needle) => sql`strpos(${haystack}, ${needle}) > 0`,
    unindexed: (column) => column,
    indexedBy: () => sql``,
    byteOrder: sql.raw('COLLATE "C"'),
    insertionOrder: sql.raw('id'),
  }
}
