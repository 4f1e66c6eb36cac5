import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as schema from './schema/index.ts'

export type Db = BetterSQLite3Database<typeof schema>

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url))

export interface OpenedDatabase {
  sqlite: Database.Database
  db: Db
}

/** Opens the SQLite file (WAL, busy timeout) and applies every pending migration. */
export function openDatabase(path: string): OpenedDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const sqlite = new Database(path)
  if (path !== ':memory:') sqlite.pragma('journal_mode = WAL')
  // Bookkeeping commits without an fsync; the event inbox raises this to FULL for its own commits
  // (see SqliteQueue), which syncs the WAL and with it everything committed before.
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('foreign_keys = ON')
  const db = drizzle(sqlite, { schema, casing: 'snake_case' })
  migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })
  return { sqlite, db }
}

/** True when every migration in the folder is recorded as applied. */
export function migrationsApplied(sqlite: Database.Database, expected: number): boolean {
  const row = sqlite.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get() as { n: number }
  return row.n >= expected
}
