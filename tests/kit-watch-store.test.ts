/**
 * The Kit watch's store on both dialects (a fresh in-memory SQLite, and a fresh PostgreSQL database
 * when one is reachable): the poll's claim (first sight, due, a new credential, one winner among
 * concurrent claims), members found by subscriber id or email with what was last seen, webhooks by
 * token, and forgetting a connection or a member.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import { PostgresKitStates } from '../server/storage/postgres/kit-states.ts'
import { SqliteKitStates } from '../server/storage/sqlite/kit-states.ts'
import { postgresRunner, sqliteRunner } from '../server/storage/common/sql.ts'
import { SubscriberStore } from '../server/storage/common/tables.ts'
import type { KitStateRepository, SubscriberRepository } from '../server/core/storage.ts'
import { createTestDatabase, postgresAvailable } from './helpers/postgres.ts'

interface Store {
  states: KitStateRepository
  subscribers: SubscriberRepository
  close(): Promise<void>
}

async function openSqlite(): Promise<Store> {
  const { sqlite } = openDatabase(':memory:')
  return {
    states: new SqliteKitStates(sqlite),
    subscribers: new SubscriberStore(sqliteRunner(sqlite)),
    close: async () => {
      sqlite.close()
    },
  }
}

async function openPg(): Promise<Store> {
  const database = await createTestDatabase('kitwatchstore')
  const opened = await openPostgres(database.url, { poolSize: 4 })
  return {
    states: new PostgresKitStates(opened.pool),
    subscribers: new SubscriberStore(postgresRunner(opened.pool)),
    close: async () => {
      await opened.pool.end()
      await database.drop()
    },
  }
}

const pgUp = await postgresAvailable()
const MINUTE = 60_000

describe.each([
  { dialect: 'sqlite', available: true, open: openSqlite },
  { dialect: 'postgres', available: pgUp, open: openPg },
])('the Kit watch store on $dialect', ({ available, open }) => {
  let store: Store
  beforeEach(async () => {
    if (available) store = await open()
  })
  afterEach(async () => {
    if (available) await store.close()
  })

  it.skipIf(!available)(
    'starts watching a connection first seen now, claims it once due, and starts again for a new credential',
    async () => {
      const { states } = store
      expect(await states.claimPoll('c_1', 'cred_a', 1000, MINUTE)).toEqual({ dueAt: 1000 + MINUTE })
      expect(await states.claimPoll('c_1', 'cred_a', 2000, MINUTE)).toEqual({ dueAt: 1000 + MINUTE })
      expect(await states.claimPoll('c_1', 'cred_a', 1000 + MINUTE, MINUTE)).toEqual({ polledFrom: 1000 })
      await states.pollDone('c_1', 1000 + MINUTE)
      expect(await states.claimPoll('c_1', 'cred_a', 1000 + MINUTE + 5, MINUTE)).toEqual({ dueAt: 1000 + 2 * MINUTE })
      expect(await states.claimPoll('c_1', 'cred_b', 5000 + MINUTE, MINUTE)).toEqual({ dueAt: 5000 + 2 * MINUTE })
      expect(await states.claimPoll('c_1', 'cred_b', 5000 + 2 * MINUTE, MINUTE)).toEqual({ polledFrom: 5000 + MINUTE })
    },
  )

  it.skipIf(!available)('lets exactly one of many concurrent claims of a due poll win', async () => {
    const { states } = store
    await states.claimPoll('c_1', 'cred_a', 0, MINUTE)
    const claims = await Promise.all(Array.from({ length: 8 }, () => states.claimPoll('c_1', 'cred_a', MINUTE, MINUTE)))
    expect(claims.filter((c) => 'polledFrom' in c)).toEqual([{ polledFrom: 0 }])
  })

  it.skipIf(!available)(
    'finds the community’s members by subscriber id or email, with what was last seen, and no other community’s',
    async () => {
      const { states, subscribers } = store
      const row = { credentialId: 'cred_a', fields: '{}', updatedAt: 1 }
      await subscribers.save({
        ...row,
        communityId: 'c_1',
        memberId: 'm_ada',
        email: 'ada@example.com',
        subscriberId: 11,
        firstName: 'Ada',
      })
      await subscribers.save({ ...row, communityId: 'c_1', memberId: 'm_bo', email: 'bo@example.com', subscriberId: 12, firstName: null })
      await subscribers.save({
        ...row,
        communityId: 'c_2',
        memberId: 'm_ada2',
        email: 'ada@example.com',
        subscriberId: 11,
        firstName: 'Ada',
      })
      const found = await states.known('c_1', 'cred_a', [
        { id: 11, email: 'x@example.com' },
        { id: 99, email: 'BO@example.com' },
      ])
      expect(found.sort((a, b) => a.memberId.localeCompare(b.memberId))).toEqual([
        { memberId: 'm_ada', subscriberId: 11, writtenEmail: 'ada@example.com', writtenFirstName: 'Ada', seen: null },
        { memberId: 'm_bo', subscriberId: 12, writtenEmail: 'bo@example.com', writtenFirstName: null, seen: null },
      ])
      expect(await states.known('c_1', 'cred_other', [{ id: 11, email: 'ada@example.com' }])).toEqual([])

      const seen = { subscriberId: 11, state: 'cancelled', stateLearnedAt: 500, firstName: 'Addie', email: 'ada@example.com' }
      await states.record('c_1', 'cred_a', 'm_ada', seen, 600)
      expect((await states.known('c_1', 'cred_a', [{ id: 11, email: 'ada@example.com' }]))[0]?.seen).toEqual(seen)
      await states.forgetMember('c_1', 'm_ada')
      expect((await states.known('c_1', 'cred_a', [{ id: 11, email: 'ada@example.com' }]))[0]?.seen).toBeNull()
    },
  )

  it.skipIf(!available)('keeps webhooks by token and forgets a connection’s webhooks and poll together', async () => {
    const { states } = store
    const hook = {
      token: 'tok_1',
      communityId: 'c_1',
      credentialId: 'cred_a',
      event: 'subscriber.subscriber_bounce',
      kitWebhookId: null,
      createdAt: 5,
    }
    await states.saveWebhook(hook)
    await states.saveWebhook({ ...hook, kitWebhookId: 77 })
    await states.saveWebhook({ ...hook, token: 'tok_2', communityId: 'c_2' })
    expect(await states.webhookByToken('tok_1')).toEqual({ ...hook, kitWebhookId: 77 })
    expect(await states.webhooks('c_1')).toEqual([{ ...hook, kitWebhookId: 77 }])
    await states.claimPoll('c_1', 'cred_a', 0, MINUTE)
    await states.forgetConnection('c_1')
    expect(await states.webhookByToken('tok_1')).toBeUndefined()
    expect(await states.webhooks('c_2')).toHaveLength(1)
    expect(await states.claimPoll('c_1', 'cred_a', 10, MINUTE)).toEqual({ dueAt: 10 + MINUTE })
  })
})
