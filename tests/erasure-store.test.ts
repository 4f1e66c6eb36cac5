/**
 * What erasure needs of the data layer, on both dialects (a fresh in-memory SQLite, and a fresh
 * PostgreSQL database when one is reachable): the "Delete by hand in Kit" list, when a member
 * counts as deleted, and the purge of a deleted member's personal data (subscriber rows under every
 * credential, what was seen in Kit, and their finished deliveries and events), leaving other
 * members, work still to do and what the ordering guard needs alone.
 */
import { sql } from 'drizzle-orm'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import type { DeliveryQueue, NewDelivery, Outcome } from '../server/core/queue.ts'
import type { ErasureRepository, KitStateRepository, SubscriberRepository } from '../server/core/storage.ts'
import { PersonalDataPurge } from '../server/pipeline/personal-data.ts'
import { ErasureStore } from '../server/storage/common/erasures.ts'
import { KitStateStore } from '../server/storage/common/kit-states.ts'
import { postgresRunner, sqliteRunner, type SqlRunner } from '../server/storage/common/sql.ts'
import { SubscriberStore } from '../server/storage/common/tables.ts'
import { PostgresQueue } from '../server/storage/postgres/queue.ts'
import { SqliteQueue } from '../server/storage/sqlite/queue.ts'
import { makeEvent } from './helpers/events.ts'
import { createTestDatabase, postgresAvailable } from './helpers/postgres.ts'

interface Store {
  queue: DeliveryQueue
  erasures: ErasureRepository
  subscribers: SubscriberRepository
  states: KitStateRepository
  run: SqlRunner
  close(): Promise<void>
}

function stores(run: SqlRunner, queue: DeliveryQueue, close: () => Promise<void>): Store {
  return { queue, run, close, erasures: new ErasureStore(run), subscribers: new SubscriberStore(run), states: new KitStateStore(run) }
}

async function openSqlite(): Promise<Store> {
  const { sqlite } = openDatabase(':memory:')
  return stores(sqliteRunner(sqlite), new SqliteQueue(sqlite), async () => {
    sqlite.close()
  })
}

async function openPg(): Promise<Store> {
  const database = await createTestDatabase('kiterasure')
  const opened = await openPostgres(database.url, { poolSize: 4 })
  return stores(postgresRunner(opened.pool), new PostgresQueue(opened.pool), async () => {
    await opened.pool.end()
    await database.drop()
  })
}

const pgUp = await postgresAvailable()
const DAY = 24 * 60 * 60_000
const T = Date.now()

let counter = 0
/** An event of the member, `n` ms after T, carrying their address and first name. */
function event(memberId: string, type: string, n: number, communityId = 'c_1'): NewDelivery {
  counter += 1
  const email = `${memberId}.person@example.com`
  const e = makeEvent({
    communityId,
    memberId,
    type,
    email,
    firstName: `Name${memberId.replace(/\W/g, '')}`,
    id: `evt_${counter}_${memberId}`,
  })
  return {
    communityId,
    eventId: e.id as string,
    eventType: type,
    memberId,
    memberEmail: email,
    eventTime: T + n,
    payload: JSON.stringify(e),
    receivedAt: T,
  }
}

const ok: Outcome = { status: 'succeeded', lastError: null, kitRequests: 1 }

describe.each([
  { dialect: 'sqlite', available: true, open: openSqlite },
  { dialect: 'postgres', available: pgUp, open: openPg },
])('erasure storage on $dialect', ({ available, open }) => {
  let store: Store
  beforeEach(async () => {
    if (available) store = await open()
  })
  afterEach(async () => {
    if (available) await store.close()
  })

  /** Enqueues the event, claims it and settles it with `outcome`. */
  async function settle(e: NewDelivery, outcome: Outcome = ok): Promise<void> {
    expect((await store.queue.enqueue(e)).accepted).toBe(true)
    const claimed = await store.queue.claim({ owner: 'o', limit: 10, leaseMs: 30_000, now: Date.now() + DAY, exclude: [] })
    const mine = claimed.find((d) => d.eventId === e.eventId)
    expect(mine).toBeDefined()
    expect(await store.queue.settle(mine!.seq, 'o', outcome)).toBe(true)
  }

  const all = <T>(text: string) => store.run.all<T>(sql.raw(text))

  it.skipIf(!available)('lists erasures newest first per community, marks a member done, lists them again when erased again', async () => {
    const { erasures } = store
    await erasures.record('c_1', 'm_old', 11, 1000)
    await erasures.record('c_1', 'm_new', 12, 2000)
    await erasures.record('c_2', 'm_other', 13, 3000)
    expect((await erasures.pending('c_1', 10)).map((e) => [e.memberId, e.subscriberId, e.erasedAt, e.doneAt])).toEqual([
      ['m_new', 12, 2000, null],
      ['m_old', 11, 1000, null],
    ])
    expect(await erasures.pending('c_1', 1)).toHaveLength(1)
    expect(await erasures.done('c_2', 'm_old', 4000)).toBe(0)
    expect(await erasures.done('c_1', 'm_old', 4000)).toBe(1)
    expect(await erasures.done('c_1', 'm_old', 4500)).toBe(0)
    expect((await erasures.pending('c_1', 10)).map((e) => e.memberId)).toEqual(['m_new'])
    await erasures.record('c_1', 'm_old', 11, 5000)
    expect((await erasures.pending('c_1', 10)).map((e) => [e.memberId, e.erasedAt])).toEqual([
      ['m_old', 5000],
      ['m_new', 2000],
    ])
  })

  it.skipIf(!available)('deletes only rows marked done before the retention cut-off', async () => {
    const { erasures } = store
    await erasures.record('c_1', 'm_done_long_ago', 1, 100)
    await erasures.record('c_1', 'm_done_lately', 2, 100)
    await erasures.record('c_1', 'm_pending', 3, 100)
    await erasures.done('c_1', 'm_done_long_ago', 1_000)
    await erasures.done('c_1', 'm_done_lately', 9_000)
    expect(await erasures.purgeDone(5_000)).toBe(1)
    const left = await all<{ m: string }>('SELECT member_id AS m FROM kit_erasures ORDER BY member_id')
    expect(left.map((r) => r.m)).toEqual(['m_done_lately', 'm_pending'])
  })

  it.skipIf(!available)('counts a member deleted once their newest event is a settled deletion and nothing of theirs waits', async () => {
    const { queue } = store
    await settle(event('m_1', 'user.signed_up', 1))
    expect(await queue.deletion('c_1', 'm_1', 0)).toBeNull()
    await settle(event('m_1', 'user.deleted', 2))
    expect(await queue.deletion('c_1', 'm_1', 0)).toBe(T + 2)
    expect(await queue.deletion('c_2', 'm_1', 0)).toBeNull()
    // An event of the member still waiting, or a newer one, and they are not (yet) deleted.
    expect((await queue.enqueue(event('m_1', 'user.updated', 1))).accepted).toBe(true)
    expect(await queue.deletion('c_1', 'm_1', 0)).toBeNull()
  })

  it.skipIf(!available)('is not deleted when rejoined, nor while a failed or not-connected deletion may be sent again', async () => {
    const { queue } = store
    await settle(event('m_back', 'user.deleted', 1))
    await settle(event('m_back', 'user.signed_up', 2))
    expect(await queue.deletion('c_1', 'm_back', 0)).toBeNull()

    await settle(event('m_failed', 'user.deleted', 1), { status: 'failed', reason: 'kit_refused', lastError: 'no', kitRequests: 1 })
    expect(await queue.deletion('c_1', 'm_failed', 0)).toBeNull()
    expect(await queue.deletion('c_1', 'm_failed', Date.now() + DAY)).toBe(T + 1)

    const offline = event('m_offline', 'user.deleted', 1)
    expect((await queue.enqueue({ ...offline, skippedReason: 'No Kit account', reason: 'not_connected' })).accepted).toBe(true)
    expect(await queue.deletion('c_1', 'm_offline', 0)).toBeNull()
    expect(await queue.deletion('c_1', 'm_offline', Date.now() + DAY)).toBe(T + 1)

    await settle(event('m_gone', 'user.deleted', 1), { status: 'skipped', reason: 'not_in_kit', lastError: 'x', kitRequests: 1 })
    expect(await queue.deletion('c_1', 'm_gone', 0)).toBe(T + 1)
  })

  it.skipIf(!available)("purges a deleted member's personal data, under every credential, and leaves other members alone", async () => {
    const { queue, subscribers, states } = store
    const signedUp = event('m_ada', 'user.signed_up', 1)
    const email = signedUp.memberEmail
    await settle(signedUp, {
      ...ok,
      steps: [
        { action: 'subscriber.created', target: email, detail: null },
        { action: 'tag.added', target: 'New Member', detail: null },
      ],
    })
    await settle(event('m_ada', 'user.deleted', 3), {
      ...ok,
      lastError: `Kit said ${email.toUpperCase()} and Namem_ada were fine.`,
      steps: [{ action: 'unsubscribed', target: null, detail: 'Email changed from old.ada@example.org.' }],
    })
    await settle(event('m_bo', 'user.signed_up', 1))
    const row = { fields: '{"plan":"gold"}', updatedAt: 1, firstName: 'Ada', email, subscriberId: 7 }
    await subscribers.save({ ...row, communityId: 'c_1', credentialId: 'cred_a', memberId: 'm_ada' })
    await subscribers.save({ ...row, communityId: 'c_1', credentialId: 'cred_b', memberId: 'm_ada' })
    await subscribers.save({ ...row, communityId: 'c_1', credentialId: 'cred_a', memberId: 'm_bo', email: 'bo@example.com' })
    await states.record('c_1', 'cred_a', 'm_ada', { subscriberId: 7, state: 'cancelled', stateLearnedAt: 1, firstName: 'Ada', email }, 1)

    const purge = new PersonalDataPurge({ queue, subscribers, kitStates: states })
    expect(await queue.deletedWithPersonalData(0, 10)).toEqual([{ communityId: 'c_1', memberId: 'm_ada', deletedAt: T + 3 }])
    expect(await purge.forget('c_1', 'm_ada')).toBe(true)
    expect(await purge.forget('c_1', 'm_bo')).toBe(false)

    expect(await subscribers.get({ communityId: 'c_1', credentialId: 'cred_a', memberId: 'm_ada' })).toBeUndefined()
    expect(await subscribers.get({ communityId: 'c_1', credentialId: 'cred_b', memberId: 'm_ada' })).toBeUndefined()
    expect(await subscribers.get({ communityId: 'c_1', credentialId: 'cred_a', memberId: 'm_bo' })).toBeDefined()
    expect(await states.seen('c_1', 'cred_a', 'm_ada')).toBeNull()

    const deliveries = await all<{ member_id: string; member_email: string; last_error: string | null; steps: string }>(
      `SELECT member_id, member_email, last_error, steps FROM deliveries ORDER BY seq`,
    )
    const ada = deliveries.filter((d) => d.member_id === 'm_ada')
    expect(ada.map((d) => d.member_email)).toEqual(['', ''])
    expect(JSON.parse(ada[0]!.steps)).toEqual([
      { action: 'subscriber.created', target: '[erased]', detail: null },
      { action: 'tag.added', target: 'New Member', detail: null },
    ])
    expect(ada[1]!.last_error).toBe('Kit said [erased] and [erased] were fine.')
    expect(JSON.parse(ada[1]!.steps)).toEqual([{ action: 'unsubscribed', target: null, detail: 'Email changed from [erased].' }])
    expect(deliveries.find((d) => d.member_id === 'm_bo')?.member_email).toBe('m_bo.person@example.com')

    const events = await all<{ id: string; member_email: string; payload: string }>(
      `SELECT id, member_email, payload FROM events WHERE member_id = 'm_ada' ORDER BY event_time`,
    )
    expect(events).toHaveLength(2)
    expect(events.map((e) => e.member_email)).toEqual(['', ''])
    expect(JSON.parse(events[0]!.payload)).toEqual({
      specversion: '1.0',
      id: signedUp.eventId,
      source: '',
      type: 'user.signed_up',
      communityid: 'c_1',
      subject: 'members/m_ada',
      data: { member: { id: 'm_ada', email: '' } },
    })
    expect(await queue.deletedWithPersonalData(0, 10)).toEqual([])
    // The same event is still recognised as a duplicate.
    expect((await queue.enqueue(signedUp)).accepted).toBe(false)
  })

  it.skipIf(!available)('finds what a crash or a late event left behind, once, and purges it', async () => {
    const { queue, subscribers, states } = store
    await settle(event('m_1', 'user.signed_up', 1))
    await settle(event('m_1', 'user.deleted', 5))
    await settle(event('m_2', 'user.deleted', 5), { status: 'failed', reason: 'kit_refused', lastError: 'no', kitRequests: 1 })
    const purge = new PersonalDataPurge({ queue, subscribers, kitStates: states })
    expect(await purge.sweep(0, 1)).toBe(1)
    expect(await purge.sweep(0)).toBe(0)
    // A failed deletion as old as retention.
    expect(await purge.sweep(Date.now() + DAY)).toBe(1)
    // An older event of the member, arriving after the deletion, settles: found again.
    await settle(event('m_1', 'user.updated', 2), { status: 'skipped', reason: 'member_deleted', lastError: 'x', kitRequests: 0 })
    expect(await queue.deletedWithPersonalData(0, 10)).toEqual([{ communityId: 'c_1', memberId: 'm_1', deletedAt: T + 5 }])
    expect(await purge.sweep(0)).toBe(1)
    const left = await all<{ n: number }>(`SELECT count(*) AS n FROM deliveries WHERE member_email <> ''`)
    expect(Number(left[0]!.n)).toBe(0)
  })
})
