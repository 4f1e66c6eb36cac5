/** Picks the dialect: PostgreSQL when DATABASE_URL is set, else the SQLite file at DATABASE_PATH. */
import type { Config } from '../config.ts'
import type { OpenedDatabase } from '../db/index.ts'
import { createSqliteStorage } from './sqlite/index.ts'
import type { Storage } from '../core/storage.ts'

export interface OpenedStorage {
  storage: Storage
  /** The embedded database itself, when that is the dialect. */
  sqlite: OpenedDatabase | null
}

export async function openStorage(config: Pick<Config, 'databasePath' | 'databaseUrl' | 'databasePoolSize'>): Promise<OpenedStorage> {
  if (config.databaseUrl) {
    // Loaded only when asked for: the embedded default never loads the PostgreSQL driver.
    const { createPostgresStorage } = await import('./postgres/index.ts')
    return { storage: await createPostgresStorage(config.databaseUrl, { poolSize: config.databasePoolSize }), sqlite: null }
  }
  const { storage, opened } = createSqliteStorage(config.databasePath)
  return { storage, sqlite: opened }
}
