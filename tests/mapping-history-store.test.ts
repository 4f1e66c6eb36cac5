/**
 * The mapping history's store on both dialects (a fresh in-memory SQLite, and a fresh PostgreSQL
 * database when one is reachable): an owner's save writes the mappings row and its version in one
 * transaction, version 0 keeps what was in place before the first save, a save over a document that
 * changed meanwhile writes nothing, one of many concurrent saves wins, pages run newest first, every
 * read is scoped by community, and retention keeps the younger versions and each community's newest.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import { MappingHistoryStore } from '../server/storage/common/mapping-history.ts'
import { postgresRunner, sqliteRunner } from '../server/storage/common/sql.ts'
import { MappingStore } from '../server/storage/common/tables.ts'
import type { MappingHistoryRepository, MappingRepository, MappingSave } from '../server/core/storage.ts'
import { createTestDatabase, postgresAvailable } from './helpers/postgres.ts'

interface Store {
  history: MappingHistoryRepository
  mappings: MappingRepository
  close(): Promise<void>
}

async function openSqlite(): Promise<Store> {
  const { sqlite } = openDatabase(':memory:')
  const run = sqliteRunner(sqlite)
  return {
    history: new MappingHistoryStore(run),
    mappings: new MappingStore(run),
    close: async () => {
      sqlite.close()
    },
  }
}

async function openPg(): Promise<Store> {
  const database = await createTestDatabase('kithistory')
  const opened = await openPostgres(database.url, { poolSize: 8 })
  const run = postgresRunner(opened.pool)
  return {
    history: new MappingHistoryStore(run),
    mappings: new MappingStore(run),
    close: async () => {
      await opened.pool.end()
      await database.drop()
    },
  }
}

const pgUp = await postgresAvailable()
const DAY = 24 * 60 * 60_000
const T0 = Date.UTC(2026, 10, 1)

describe.each([
  { dialect: 'sqlite', available: true, open: openSqlite },
  { dialect: 'postgres', available: pgUp, open: openPg },
])('the mapping history store on $dialect', ({ available, open }) => {
  let store: Store
  beforeEach(async () => {
    if (available) store = await open()
  })
  afterEach(async () => {
    if (available) await store.close()
  })

  /** A save of `document` at `at` over what the community has stored now (on the first, version 0 is from just before). */
  async function save(communityId: string, document: string, at: number, extra: Partial<MappingSave> = {}): Promise<number | null> {
    const row = await store.mappings.get(communityId)
    return store.history.save({
      communityId,
      document,
      expected: row?.document ?? null,
      savedBy: 'u_owner',
      savedAt: at,
      change: `saved ${document}`,
      restoredFrom: null,
      baseline: { document: row?.document ?? '{"defaults":true}', savedAt: at - 1, change: 'before' },
      ...extra,
    })
  }

  const numbers = async (communityId: string) => (await store.history.list(communityId, { limit: 1000 })).map((v) => v.version)

  it.skipIf(!available)('stores the first save as version 1 over version 0, what was in place, with the mappings row', async () => {
    expect(await save('c_1', '{"n":1}', T0)).toBe(1)
    expect(await store.mappings.get('c_1')).toEqual({ communityId: 'c_1', document: '{"n":1}', updatedAt: new Date(T0).toISOString() })
    expect(await store.history.list('c_1', { limit: 10 })).toEqual([
      { communityId: 'c_1', version: 1, savedBy: 'u_owner', savedAt: T0, change: 'saved {"n":1}', restoredFrom: null },
      { communityId: 'c_1', version: 0, savedBy: null, savedAt: T0 - 1, change: 'before', restoredFrom: null },
    ])
    expect(await store.history.get('c_1', 0)).toMatchObject({ document: '{"defaults":true}', savedBy: null })
    expect(await store.history.get('c_1', 1)).toMatchObject({ document: '{"n":1}' })
  })

  it.skipIf(!available)('numbers each later save one more, keeps what it restored, and pages newest first', async () => {
    for (let n = 1; n <= 5; n++) await save('c_1', `{"n":${n}}`, T0 + n)
    expect(await save('c_1', '{"n":2}', T0 + 6, { restoredFrom: 2, savedBy: 'u_admin' })).toBe(6)
    expect(await numbers('c_1')).toEqual([6, 5, 4, 3, 2, 1, 0])
    expect(await store.history.get('c_1', 6)).toMatchObject({ document: '{"n":2}', restoredFrom: 2, savedBy: 'u_admin', savedAt: T0 + 6 })
    const page = await store.history.list('c_1', { limit: 2 })
    expect(page.map((v) => v.version)).toEqual([6, 5])
    expect((await store.history.list('c_1', { beforeVersion: 5, limit: 2 })).map((v) => v.version)).toEqual([4, 3])
    expect((await store.history.list('c_1', { beforeVersion: 1, limit: 2 })).map((v) => v.version)).toEqual([0])
  })

  it.skipIf(!available)('writes nothing when the stored document changed since it was read', async () => {
    await save('c_1', '{"n":1}', T0)
    const stale = await store.mappings.get('c_1')
    // The plugin's own edit (an id Kit gave) lands in between.
    await store.mappings.replace({ communityId: 'c_1', document: '{"n":1,"id":7}', updatedAt: new Date(T0 + 1).toISOString() }, '{"n":1}')
    const lost = await store.history.save({
      communityId: 'c_1',
      document: '{"n":2}',
      expected: stale!.document,
      savedBy: 'u_owner',
      savedAt: T0 + 2,
      change: 'saved 2',
      restoredFrom: null,
      baseline: { document: '{}', savedAt: T0, change: 'before' },
    })
    expect(lost).toBeNull()
    expect((await store.mappings.get('c_1'))?.document).toBe('{"n":1,"id":7}')
    expect(await numbers('c_1')).toEqual([1, 0])
  })

  it.skipIf(!available)('refuses a first save when a document was stored meanwhile, recording no version 0', async () => {
    await store.mappings.create({ communityId: 'c_1', document: '{"held":true}', updatedAt: new Date(T0).toISOString() })
    const lost = await store.history.save({
      communityId: 'c_1',
      document: '{"n":1}',
      expected: null,
      savedBy: 'u_owner',
      savedAt: T0 + 1,
      change: 'saved 1',
      restoredFrom: null,
      baseline: { document: '{"defaults":true}', savedAt: T0, change: 'before' },
    })
    expect(lost).toBeNull()
    expect(await numbers('c_1')).toEqual([])
    // Read again, the save goes over the stored document, which becomes version 0.
    expect(await save('c_1', '{"n":1}', T0 + 2)).toBe(1)
    expect(await store.history.get('c_1', 0)).toMatchObject({ document: '{"held":true}' })
  })

  it.skipIf(!available)('lets exactly one of many concurrent saves over the same document win', async () => {
    await save('c_1', '{"n":0}', T0)
    const read = await store.mappings.get('c_1')
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.history.save({
          communityId: 'c_1',
          document: `{"tab":${i}}`,
          expected: read!.document,
          savedBy: `u_tab${i}`,
          savedAt: T0 + 1 + i,
          change: 'saved',
          restoredFrom: null,
          baseline: { document: '{}', savedAt: T0, change: 'before' },
        }),
      ),
    )
    const won = results.filter((v) => v !== null)
    expect(won).toEqual([2])
    const winner = results.indexOf(2)
    expect((await store.mappings.get('c_1'))?.document).toBe(`{"tab":${winner}}`)
    expect(await numbers('c_1')).toEqual([2, 1, 0])
  })

  it.skipIf(!available)('lets exactly one of many concurrent first saves win, with one version 0', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        store.history.save({
          communityId: 'c_1',
          document: `{"tab":${i}}`,
          expected: null,
          savedBy: `u_tab${i}`,
          savedAt: T0 + i,
          change: 'saved',
          restoredFrom: null,
          baseline: { document: '{"defaults":true}', savedAt: T0, change: 'before' },
        }),
      ),
    )
    expect(results.filter((v) => v !== null)).toEqual([1])
    expect(await numbers('c_1')).toEqual([1, 0])
    expect((await store.mappings.get('c_1'))?.document).toBe(`{"tab":${results.indexOf(1)}}`)
  })

  it.skipIf(!available)('reads and lists a version only in its own community', async () => {
    await save('c_1', '{"a":1}', T0)
    await save('c_2', '{"b":1}', T0)
    await save('c_2', '{"b":2}', T0 + 1)
    expect(await numbers('c_1')).toEqual([1, 0])
    expect(await numbers('c_2')).toEqual([2, 1, 0])
    expect(await store.history.get('c_1', 2)).toBeUndefined()
    expect(await store.history.get('c_1', 1)).toMatchObject({ document: '{"a":1}' })
    expect(await store.history.get('c_3', 0)).toBeUndefined()
  })

  it.skipIf(!available)('purges versions older than the cut-off, but never one of a community’s newest `keep`', async () => {
    // c_busy: versions 0–14, all saved 40 days ago; c_quiet: 0–3, as old; c_recent: 0–14, all young.
    for (let n = 1; n <= 14; n++) await save('c_busy', `{"n":${n}}`, T0 - 40 * DAY + n)
    for (let n = 1; n <= 3; n++) await save('c_quiet', `{"n":${n}}`, T0 - 40 * DAY + n)
    for (let n = 1; n <= 14; n++) await save('c_recent', `{"n":${n}}`, T0 - DAY + n)
    const cutOff = T0 - 30 * DAY
    expect(await store.history.purge(cutOff, 10, 3)).toBe(3)
    expect(await store.history.purge(cutOff, 10, 500)).toBe(2)
    expect(await store.history.purge(cutOff, 10, 500)).toBe(0)
    expect(await numbers('c_busy')).toEqual([14, 13, 12, 11, 10, 9, 8, 7, 6, 5])
    expect(await numbers('c_quiet')).toEqual([3, 2, 1, 0])
    expect(await numbers('c_recent')).toHaveLength(15)
  })

  it.skipIf(!available)('keeps every version younger than the cut-off, however many', async () => {
    for (let n = 1; n <= 12; n++) await save('c_1', `{"n":${n}}`, T0 + n)
    expect(await store.history.purge(T0 + 1, 5, 500)).toBe(1)
    expect(await numbers('c_1')).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
  })
})
