/** The embedded dialect: one SQLite file, one process. Kit's budget stays in that process's memory. */
import { MIGRATIONS_FOLDER, migrationsApplied, openDatabase, type OpenedDatabase } from '../../db/index.ts'
import { migrationCount } from '../migrations.ts'
import { SqliteOutbox } from './outbox.ts'
import { SqliteKitStates } from './kit-states.ts'
import type { Storage } from '../../core/storage.ts'
import { SqliteConnections } from './connections.ts'
import { SqliteDeliveryReads } from './deliveries.ts'
import { SqliteHeldTags } from './held-tags.ts'
import { SqliteMappings } from './mappings.ts'
import { SqliteQueue } from './queue.ts'
import { SqliteSubscribers } from './subscribers.ts'
import { SqliteSyncs } from './syncs.ts'

export function createSqliteStorage(path: string): { storage: Storage; opened: OpenedDatabase } {
  const opened = openDatabase(path)
  const { sqlite, db } = opened
  const expected = migrationCount(MIGRATIONS_FOLDER)
  const storage: Storage = {
    dialect: 'sqlite',
    connections: new SqliteConnections(db),
    mappings: new SqliteMappings(db),
    heldTags: new SqliteHeldTags(db),
    subscribers: new SqliteSubscribers(db),
    queue: new SqliteQueue(sqlite),
    deliveries: new SqliteDeliveryReads(sqlite),
    syncs: new SqliteSyncs(sqlite),
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
