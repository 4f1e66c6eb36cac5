/**
 * The queue's read of a community's newest held events per type (for the mappings preview), on
 * both dialects: at most N of each type, newest first, one community only; on SQLite along
 * events_recent_idx with no sort.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeliveryQueue, NewDelivery } from '../server/core/queue.ts'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import { PostgresQueue } from '../server/storage/postgres/queue.ts'
import { SqliteQueue } from '../server/storage/sqlite/queue.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()
const T0 = Date.parse('2026-11-01T10:00:00.000Z')
let counter = 0

function event(overrides: Partial<NewDelivery> = {}): NewDelivery {
  counter += 1
  const memberId = overrides.memberId ?? `m_${counter}`
  return {
    communityId: 'c_alpha',
    eventId: `evt_${counter}`,
    eventType: 'user.signed_up',
    memberId,
    memberEmail: `${memberId}@example.com`,
    eventTime: T0 + counter,
    payload: JSON.stringify({ n: counter }),
    receivedAt: T0,
    ...overrides,
  }
}

function behaves(fresh: () => Promise<DeliveryQueue>) {
  it('answers at most N of each type asked for, newest first within a type, for one community only', async () => {
    const queue = await fresh()
    const signups = [T0 + 10, T0 + 30, T0 + 20].map((eventTime) => event({ eventTime }))
    const started = event({ eventType: 'subscription.started', eventTime: T0 + 5 })
    const others = [event({ eventType: 'access.granted' }), event({ communityId: 'c_bravo', eventTime: T0 + 99 })]
    for (const e of [...signups, started, ...others]) expect((await queue.enqueue(e)).accepted).toBe(true)

    const held = await queue.recentEvents('c_alpha', ['user.signed_up', 'subscription.started'], 2)
    expect(held).toEqual([
      { type: 'user.signed_up', memberId: signups[1]!.memberId, eventTime: T0 + 30, payload: signups[1]!.payload },
      { type: 'user.signed_up', memberId: signups[2]!.memberId, eventTime: T0 + 20, payload: signups[2]!.payload },
      { type: 'subscription.started', memberId: started.memberId, eventTime: T0 + 5, payload: started.payload },
    ])
    expect(await queue.recentEvents('c_charlie', ['user.signed_up'], 2)).toEqual([])
    expect(await queue.recentEvents('c_alpha', [], 2)).toEqual([])
  })

  it('breaks a tie in time by storing order, the later stored first', async () => {
    const queue = await fresh()
    const first = event({ eventTime: T0 })
    const second = event({ eventTime: T0 })
    await queue.enqueue(first)
    await queue.enqueue(second)
    const held = await queue.recentEvents('c_alpha', ['user.signed_up'], 1)
    expect(held.map((e) => e.payload)).toEqual([second.payload])
  })
}

describe('recent events on SQLite', () => {
  behaves(async () => new SqliteQueue(openDatabase(':memory:').sqlite))

  it('walks events_recent_idx for each type, with no sort', async () => {
    const { sqlite } = openDatabase(':memory:')
    const statements: string[] = []
    const prepare = sqlite.prepare.bind(sqlite)
    sqlite.prepare = ((text: string) => {
      statements.push(text)
      return prepare(text)
    }) as typeof sqlite.prepare
    await new SqliteQueue(sqlite).recentEvents('c_alpha', ['user.signed_up', 'subscription.started'], 500)
    const read = statements.find((text) => text.includes('events_recent_idx'))
    expect(read).toBeDefined()
    const steps = (
      prepare(`EXPLAIN QUERY PLAN ${read}`).all('c_alpha', 'user.signed_up', 500, 'c_alpha', 'subscription.started', 500) as {
        detail: string
      }[]
    ).map((p) => p.detail)
    expect(steps.filter((d) => d.startsWith('SEARCH events'))).toEqual([
      'SEARCH events USING INDEX events_recent_idx (community_id=? AND type=?)',
      'SEARCH events USING INDEX events_recent_idx (community_id=? AND type=?)',
    ])
    expect(steps.join('\n')).not.toMatch(/TEMP B-TREE/)
  })
})

describe.skipIf(!pgUp)('recent events on PostgreSQL', () => {
  let database: TestDatabase
  let pool: pg.Pool
  beforeAll(async () => {
    database = await createTestDatabase('kitrecent')
    ;({ pool } = await openPostgres(database.url))
  })
  afterAll(async () => {
    await pool?.end()
    await database?.drop()
  })
  behaves(async () => {
    await pool.query('TRUNCATE events, deliveries RESTART IDENTITY')
    return new PostgresQueue(pool)
  })
})
