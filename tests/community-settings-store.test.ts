/**
 * The community settings store on both dialects (a fresh migrated in-memory SQLite, and a fresh
 * PostgreSQL database when one is reachable): nothing saved reads as no row, a save replaces the
 * community's row, and one community's row never answers for another.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import { postgresRunner, sqliteRunner } from '../server/storage/common/sql.ts'
import { CommunitySettingsStore } from '../server/storage/common/settings.ts'
import type { CommunitySettingsRepository } from '../server/core/storage.ts'
import { createTestDatabase, postgresAvailable } from './helpers/postgres.ts'

interface Store {
  settings: CommunitySettingsRepository
  close(): Promise<void>
}

async function openSqlite(): Promise<Store> {
  const { sqlite } = openDatabase(':memory:')
  return {
    settings: new CommunitySettingsStore(sqliteRunner(sqlite)),
    close: async () => {
      sqlite.close()
    },
  }
}

async function openPg(): Promise<Store> {
  const database = await createTestDatabase('settingsstore')
  const opened = await openPostgres(database.url, { poolSize: 2 })
  return {
    settings: new CommunitySettingsStore(postgresRunner(opened.pool)),
    close: async () => {
      await opened.pool.end()
      await database.drop()
    },
  }
}

const pgUp = await postgresAvailable()

describe.each([
  { dialect: 'sqlite', available: true, open: openSqlite },
  { dialect: 'postgres', available: pgUp, open: openPg },
])('the community settings store on $dialect', ({ available, open }) => {
  let store: Store
  beforeEach(async () => {
    if (available) store = await open()
  })
  afterEach(async () => {
    if (available) await store.close()
  })

  it.skipIf(!available)('has no row for a community that never saved', async () => {
    expect(await store.settings.get('c_1')).toBeUndefined()
  })

  it.skipIf(!available)('saves the consent mode and replaces it on the next save, with its time', async () => {
    await store.settings.saveConsentMode('c_1', 'marketing_consent', 1000)
    expect(await store.settings.get('c_1')).toEqual({ consentMode: 'marketing_consent', updatedAt: 1000 })
    await store.settings.saveConsentMode('c_1', 'all_members', 2000)
    expect(await store.settings.get('c_1')).toEqual({ consentMode: 'all_members', updatedAt: 2000 })
  })

  it.skipIf(!available)("never answers with another community's row", async () => {
    await store.settings.saveConsentMode('c_1', 'marketing_consent', 1000)
    expect(await store.settings.get('c_2')).toBeUndefined()
    await store.settings.saveConsentMode('c_2', 'all_members', 3000)
    expect(await store.settings.get('c_1')).toEqual({ consentMode: 'marketing_consent', updatedAt: 1000 })
    expect(await store.settings.get('c_2')).toEqual({ consentMode: 'all_members', updatedAt: 3000 })
  })
})
