/**
 * PostgreSQL for the tests that need it (127.0.0.1:5432, trust auth). Each caller gets a database
 * of its own, created fresh and dropped afterwards. Without PostgreSQL those tests are skipped on
 * a developer machine, with a line saying so, and fail in CI.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { it } from 'vitest'

export const PG_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const SKIPPED = 'PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL tests skipped'

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/** Whether PostgreSQL is reachable; when it is not, warns and (in CI) registers a failing test. */
export async function postgresAvailable(): Promise<boolean> {
  const up = await reachable()
  if (!up) {
    console.warn(SKIPPED)
    if (process.env.CI) {
      it('has PostgreSQL at 127.0.0.1:5432 in CI', () => {
        throw new Error(`${SKIPPED} — CI must run them: .ci/run starts PostgreSQL`)
      })
    }
  }
  return up
}

function urlOf(database: string): string {
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${database}`
  return url.toString()
}

export interface TestDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

/** A new, empty database; `drop()` ends its connections and removes it. */
export async function createTestDatabase(prefix = 'kittest'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  return {
    name,
    url: urlOf(name),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}
