/** The shared registry of tag ids on PostgreSQL (skipped without it; fails in CI). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres, type OpenedPostgres } from '../server/db/postgres.ts'
import { PostgresKnownTags } from '../server/storage/postgres/known-tags.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()

describe.skipIf(!pgUp)('known tags on PostgreSQL', () => {
  let database: TestDatabase
  let opened: OpenedPostgres
  beforeAll(async () => {
    database = await createTestDatabase('kittags')
    opened = await openPostgres(database.url)
  })
  afterAll(async () => {
    await opened?.pool.end()
    await database?.drop()
  })

  it('finds an id learnt since a time, per credential, and keeps the newest id for a name', async () => {
    const tags = new PostgresKnownTags(opened.pool)
    await tags.remember('cred_a', 'vip', 11, 1_000)
    expect(await tags.find('cred_a', 'vip', 1_000)).toBe(11)
    expect(await tags.find('cred_a', 'vip', 1_001)).toBeNull()
    expect(await tags.find('cred_b', 'vip', 0)).toBeNull()
    await tags.remember('cred_a', 'vip', 12, 2_000)
    expect(await tags.find('cred_a', 'vip', 1_500)).toBe(12)
  })
})
