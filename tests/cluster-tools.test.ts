/**
 * The pieces the cluster drills and benchmark judge by: the stand-in's per-window count, the
 * spreading of events over instances, and the delivery store read back from PostgreSQL.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres, type OpenedPostgres } from '../server/db/postgres.ts'
import { postSpread } from '../bench/lib/cluster.ts'
import { event, member } from '../bench/lib/events.ts'
import { scrapeCounter } from '../bench/lib/metrics.ts'
import { maxPerWindow, slotTurnaround } from '../bench/lib/standin.ts'
import { openStore, type DeliveryStore } from '../bench/lib/store.ts'
import type { StandinRequest } from './kit-standin/server.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'

const request = (at: number, status = 200, key = 'k1'): StandinRequest => ({ at, method: 'GET', path: '/v4/tags', query: '', status, key })

describe('maxPerWindow', () => {
  it('counts the admitted requests of one key in the fullest rolling window', () => {
    const requests = [
      request(0),
      request(500),
      request(999),
      request(1000),
      request(1400),
      request(1450, 429),
      request(1460, 401),
      request(1470, 200, 'k2'),
    ]
    // 500, 999, 1000 and 1400 fall within one second; 0 and 1000 are a whole second apart.
    expect(maxPerWindow(requests, 1000, 'k1')).toBe(4)
    expect(maxPerWindow(requests, 100, 'k1')).toBe(2)
    expect(maxPerWindow(requests, 1, 'k1')).toBe(1)
  })

  it('leaves out refusals for the budget or the key, and unanswered requests', () => {
    expect(maxPerWindow([request(0, 429), request(1, 401), request(2, 0), request(3)], 1000, 'k1')).toBe(1)
  })
})

describe('slotTurnaround', () => {
  it('measures how long past the window each slot waited for its next request', () => {
    // Two slots, a 1000 ms window: 0 → 1000 (0 extra), 100 → 1300 (200), 1000 → 2000 (0), 1300 → 2500 (200, a 429 left out).
    const requests = [
      request(0),
      request(100),
      request(1000),
      request(1300),
      request(2000),
      request(2400, 429),
      request(2500),
      request(2600, 200, 'k2'),
    ]
    expect(slotTurnaround(requests, 2, 1000, 'k1')).toEqual({ medianMs: 200, meanMs: 100 })
  })

  it('has nothing to say about fewer requests than slots', () => {
    expect(slotTurnaround([request(0)], 2, 1000, 'k1').medianMs).toBeNaN()
  })
})

describe('scrapeCounter', () => {
  let server: Server
  let url: string
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.end(
        [
          '# HELP kit_bus_messages_total Messages read from the event bus',
          '# TYPE kit_bus_messages_total counter',
          'kit_bus_messages_total{outcome="accepted"} 12',
          'kit_bus_messages_total{outcome="invalid_signature"} 3',
          'kit_events_received_total{outcome="accepted"} 99',
        ].join('\n'),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('reads one counter by its label, ignoring the others', async () => {
    expect(await scrapeCounter(url, 'kit_bus_messages_total', 'outcome')).toEqual({ accepted: 12, invalid_signature: 3 })
  })

  it('gives nothing for a server that does not answer', async () => {
    expect(await scrapeCounter('http://127.0.0.1:9', 'kit_bus_messages_total', 'outcome')).toEqual({})
  })
})

describe('postSpread', () => {
  const seen: string[][] = [[], []]
  const servers: Server[] = []
  const urls: string[] = []
  beforeAll(async () => {
    for (const list of seen) {
      const server = createServer((req, res) => {
        let body = ''
        req.on('data', (chunk: Buffer) => (body += chunk.toString()))
        req.on('end', () => {
          list.push((JSON.parse(body) as { id: string }).id)
          res.statusCode = 202
          res.end()
        })
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      servers.push(server)
      urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    }
  })
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))))

  it('sends the events to the instances in turn and keeps the statuses in the events’ order', async () => {
    const events = Array.from({ length: 5 }, (_, i) => event(member('c_spread', 'spread', i), 'user.signed_up', Date.now()))
    const statuses = await postSpread([...urls, 'http://127.0.0.1:9'], 'a2V5', events)
    expect(statuses).toEqual([202, 202, 0, 202, 202])
    expect(seen[0]?.sort()).toEqual([events[0]?.id, events[3]?.id].sort())
    expect(seen[1]?.sort()).toEqual([events[1]?.id, events[4]?.id].sort())
  })
})

const pgUp = await postgresAvailable()

describe.skipIf(!pgUp)('the delivery store on PostgreSQL', () => {
  let database: TestDatabase
  let opened: OpenedPostgres
  let store: DeliveryStore

  const addEvent = (id: string, memberId: string) =>
    opened.pool.query(
      `INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at) VALUES ('c1', $1, 'user.signed_up', $2, 'a@example.com', 1, '{}', 1)`,
      [id, memberId],
    )
  const addDelivery = (eventId: string, memberId: string, status: string) =>
    opened.pool.query(
      `INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status, next_attempt_at, received_at, created_at, updated_at)
       VALUES ($1, 'c1', $2, 'user.signed_up', $3, 'a@example.com', 1, $4, 0, 1, 'now', 'now')`,
      [`d_${eventId}_${status}`, eventId, memberId, status],
    )

  beforeAll(async () => {
    database = await createTestDatabase('kitcluster')
    opened = await openPostgres(database.url)
    store = openStore(database.url)
    await addEvent('e1', 'm1')
    await addEvent('e2', 'm1')
    await addEvent('e3', 'm2')
    await addEvent('e4', 'm3')
    await addDelivery('e1', 'm1', 'held')
    await addDelivery('e2', 'm1', 'pending')
    await addDelivery('e3', 'm2', 'pending')
    await addDelivery('e4', 'm3', 'succeeded')
  })
  afterAll(async () => {
    await store?.close()
    await opened?.pool.end()
    await database?.drop()
  })

  it('counts deliveries by status as numbers', async () => {
    expect(await store.counts()).toEqual({ pending: 2, retrying: 0, held: 1, succeeded: 1, failed: 0, skipped: 0 })
    expect(await store.total()).toBe(4)
    expect(await store.eventRows()).toBe(4)
  })

  it('finds waiting deliveries not queued behind a held one of the same member', async () => {
    expect(await store.waitingUnblocked()).toBe(1)
  })

  it('lists one member’s deliveries in the order they were stored', async () => {
    const history = await store.memberHistory('m1')
    expect(history.map((d) => [d.eventType, d.status, d.eventTime, d.attempts])).toEqual([
      ['user.signed_up', 'held', 0, 0],
      ['user.signed_up', 'pending', 0, 0],
    ])
    expect(history.every((d) => typeof d.storedAfterMs === 'number' && d.storedAfterMs >= 0)).toBe(true)
    expect(await store.memberHistory('m_nobody')).toEqual([])
  })

  it('reports events without a delivery and lists what is not terminal', async () => {
    await addEvent('e5', 'm4')
    expect(await store.integrity()).toEqual({ duplicateEvents: 0, duplicateDeliveries: 0, eventsWithoutDelivery: 1 })
    expect((await store.storedIds()).has('e5')).toBe(true)
    const stuck = await store.stuck()
    expect(stuck.map((row) => row.status)).toEqual(['held', 'pending', 'pending'])
    expect(typeof stuck[0]?.due_in_ms).toBe('number')
  })
})
