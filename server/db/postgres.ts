import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import * as schema from './pg-schema/index.ts'

export type PgDb = NodePgDatabase<typeof schema>

export const PG_MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations/postgres', import.meta.url))

/** Any fixed number: every instance takes this lock while it applies migrations, one at a time. */
const MIGRATION_LOCK = 0x4b17_0001

export interface OpenedPostgres {
  pool: pg.Pool
  db: PgDb
}

export interface PostgresOptions {
  /** Connections per instance (default 10). */
  poolSize?: number
}

/**
 * Connects to `url` and applies every pending migration. Instances starting together take turns
 * (an advisory lock), so only the first applies them.
 */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<OpenedPostgres> {
  // A database that hangs (rather than refusing) must fail a query, not stall the caller for ever:
  // the server ends long statements, the client gives up on a connection that went silent.
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 10_000,
    statement_timeout: 30_000,
    query_timeout: 35_000,
    keepAlive: true,
  })
  // An idle client losing its server (a restart) must not take the process down with it.
  pool.on('error', () => {})
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      await migrate(drizzle(client, { schema, casing: 'snake_case' }), { migrationsFolder: PG_MIGRATIONS_FOLDER })
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } catch (err) {
    client.release()
    await pool.end()
    throw err
  }
  client.release()
  return { pool, db: drizzle(pool, { schema, casing: 'snake_case' }) }
}

/** How many migrations the database records as applied. */
export async function pgMigrationsApplied(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations')
  return rows[0]?.n ?? 0
}
