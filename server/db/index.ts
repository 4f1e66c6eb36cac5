import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as schema from './schema/index.ts'

export type Db = BetterSQLite3Database<typeof schema>

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations/sqlite', import.meta.url))

export interface OpenedDatabase {
  sqlite: Database.Database
  db: Db
}

const OWNER_ONLY = 0o600

/**
 * The database holds sealed Kit keys and members' emails: the file is created readable by its
 * owner only, and SQLite gives the -wal and -shm files it creates the database file's mode.
 * Files left with wider modes by an earlier version are narrowed.
 */
function createOwnerOnly(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  closeSync(openSync(path, 'a', OWNER_ONLY))
  chmodSync(path, OWNER_ONLY)
}

function narrowCompanions(path: string): void {
  for (const companion of [`${path}-wal`, `${path}-shm`]) {
    if (existsSync(companion)) chmodSync(companion, OWNER_ONLY)
  }
}

/** Opens the SQLite file (WAL, busy timeout, owner-only file modes) and applies every pending migration. */
export function openDatabase(path: string): OpenedDatabase {
  const onDisk = path !== ':memory:'
  if (onDisk) createOwnerOnly(path)
  const sqlite = new Database(path)
  if (onDisk) {
    sqlite.pragma('journal_mode = WAL')
    narrowCompanions(path)
  }
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
