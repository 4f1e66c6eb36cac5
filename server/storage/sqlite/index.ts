/** The embedded dialect: one SQLite file, one process. Kit's budget stays in that process's memory. */
import { MIGRATIONS_FOLDER, migrationsApplied, openDatabase, type OpenedDatabase } from '../../db/index.ts'
import { sqliteRunner } from '../common/sql.ts'
import { sharedStores } from '../common/stores.ts'
import { migrationCount } from '../migrations.ts'
import { SqliteKitStates } from './kit-states.ts'
import type { Storage } from '../../core/storage.ts'
import { SqliteOutbox } from './outbox.ts'
import { SqliteQueue } from './queue.ts'

export function createSqliteStorage(path: string): { storage: Storage; opened: OpenedDatabase } {
  const opened = openDatabase(path)
  const { sqlite } = opened
  const expected = migrationCount(MIGRATIONS_FOLDER)
  const storage: Storage = {
    dialect: 'sqlite',
    ...sharedStores(sqliteRunner(sqlite)),
    queue: new SqliteQueue(sqlite),
    platformOutbox: new SqliteOutbox(sqlite),
    kitStates: new SqliteKitStates(sqlite),
    ledger: null,
    knownTags: null,
    rateLimits: null,
    async health() {
      try {
        sqlite.prepare('SELECT 1').get()
        return { database: 'ok', migrations: migrationsApplied(sqlite, expected) ? 'ok' : 'pending' }
      } catch {
        return { database: 'unreachable', migrations: 'unknown' }
      }
    },
    async close() {
      sqlite.close()
    },
  }
  return { storage, opened }
}
