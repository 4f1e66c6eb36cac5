// Over 400 lines: one behavioural suite for the outbox and its sender, run against both dialects.
/**
 * The outbox of events to the platform and its sender, against both dialects (the embedded SQLite
 * outbox and the shared PostgreSQL one) and a real receiver on loopback that checks every
 * signature with the shared secret: report once, per-member order, leases, the hourly failing
 * notice, community scoping, retries under the same id, a receiver down then up, 72 hours before
 * failing; then what only the shared one must survive: two instances sending at once.
 */
import pino from 'pino'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import { GIVE_UP_AFTER_MS, PlatformEvents, type EmitInput } from '../server/pipeline/platform-events.ts'
import { PlatformSender, type PlatformSenderOptions } from '../server/pipeline/platform-outbox.ts'
import { PostgresOutbox } from '../server/storage/postgres/outbox.ts'
import { SqliteOutbox } from '../server/storage/sqlite/outbox.ts'
import type { PlatformOutbox } from '../server/core/storage.ts'
import { waitFor } from './helpers/events.ts'
import { startPlatformReceiver, type PlatformReceiver } from './helpers/platform-receiver.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()
const silent = pino({ level: 'silent' })
const HOUR = 60 * 60_000

interface Dialect {
  name: string
  available: boolean
  setup(): Promise<void>
  fresh(): Promise<PlatformOutbox>
  /** Another instance's outbox on the same database (PostgreSQL only). */
  another?(): Promise<PlatformOutbox>
  teardown(): Promise<void>
}

function sqliteDialect(): Dialect {
  return {
    name: 'SQLite',
    available: true,
    setup: async () => {},
    fresh: async () => new SqliteOutbox(openDatabase(':memory:').sqlite),
    teardown: async () => {},
  }
}

function postgresDialect(): Dialect {
  let database: TestDatabase | undefined
  const pools: pg.Pool[] = []
  return {
    name: 'PostgreSQL',
    available: pgUp,
    setup: async () => {
      database = await createTestDatabase('kitoutbox')
      pools.push((await openPostgres(database.url)).pool)
    },
    fresh: async () => {
      await pools[0]!.query('TRUNCATE platform_events, platform_failures RESTART IDENTITY')
      return new PostgresOutbox(pools[0]!)
    },
    another: async () => {
      const pool = new pg.Pool({ connectionString: database!.url, max: 4 })
      pools.push(pool)
      return new PostgresOutbox(pool)
    },
    teardown: async () => {
      for (const pool of pools) {
        // A connection still closing when the database is dropped is ended by the server (57P01):
        // the end of the test, not a failure of it.
        pool.on('error', () => {})
        await pool.end()
      }
      await database?.drop()
    },
  }
}

const member = (id: string) => ({ id, email: `${id}@example.com` })
const kitSide = (state: string, id = 1001) => ({ subscriber_id: id, state, email_address: `m${id}@example.com`, first_name: 'Ada' })
const unsubscribed = (communityId: string, memberId: string, observedAt = Date.now()): EmitInput => ({
  type: 'kit.subscriber.unsubscribed',
  communityId,
  member: member(memberId),
  kit: kitSide('cancelled'),
  observedAt,
})
const renamed = (communityId: string, memberId: string, to: string): EmitInput => ({
  type: 'kit.subscriber.updated',
  communityId,
  member: member(memberId),
  kit: kitSide('active'),
  changes: { first_name: { from: 'Ada', to } },
  observedAt: Date.now(),
})

/** Clocks the tests move by hand. */
function clock(start = Date.UTC(2026, 11, 7, 5)) {
  let t = start
  return { now: () => t, advance: (ms: number) => (t += ms), set: (ms: number) => (t = ms) }
}

for (const dialect of [sqliteDialect(), postgresDialect()]) {
  describe.skipIf(!dialect.available)(`the platform outbox on ${dialect.name}`, () => {
    let receiver: PlatformReceiver
    const senders: PlatformSender[] = []
    beforeAll(async () => {
      await dialect.setup()
      receiver = await startPlatformReceiver()
    })
    afterEach(async () => {
      for (const sender of senders.splice(0)) await sender.stop()
      receiver.reset()
    })
    afterAll(async () => {
      await receiver.close()
      await dialect.teardown()
    })

    const portFor = (outbox: PlatformOutbox, now?: () => number) =>
      new PlatformEvents({ outbox, configured: true, notify: () => {}, ...(now ? { now } : {}) })
    const senderFor = (outbox: PlatformOutbox, options: Partial<PlatformSenderOptions> = {}) => {
      const sender = new PlatformSender({
        outbox,
        url: receiver.url,
        secret: receiver.secret,
        log: silent,
        backoff: { baseMs: 20, maxMs: 80 },
        idlePollMs: 20,
        timeoutMs: 2000,
        ...options,
      })
      senders.push(sender)
      return sender
    }

    it('stores each state a member reaches once, and every change of name', async () => {
      const outbox = await dialect.fresh()
      const port = portFor(outbox)
      expect((await port.emit(unsubscribed('c_1', 'm_1'))).status).toBe('stored')
      expect(await port.emit(unsubscribed('c_1', 'm_1'))).toEqual({ status: 'reported_before' })
      expect((await port.emit({ ...unsubscribed('c_1', 'm_1'), type: 'kit.subscriber.bounced', kit: kitSide('bounced') })).status).toBe(
        'stored',
      )
      expect((await port.emit(unsubscribed('c_2', 'm_1'))).status, 'another community').toBe('stored')
      expect((await port.emit(renamed('c_1', 'm_1', 'Adelaide'))).status).toBe('stored')
      expect((await port.emit(renamed('c_1', 'm_1', 'Adelaide'))).status, 'an update is not a state').toBe('stored')
      expect((await outbox.list('c_1', { limit: 10 })).map((e) => e.type)).toEqual([
        'kit.subscriber.updated',
        'kit.subscriber.updated',
        'kit.subscriber.bounced',
        'kit.subscriber.unsubscribed',
      ])
    })

    it('stores nothing when events to the platform are not configured', async () => {
      const outbox = await dialect.fresh()
      const port = new PlatformEvents({ outbox, configured: false, notify: () => {} })
      expect(await port.emit(unsubscribed('c_1', 'm_1'))).toEqual({ status: 'not_configured' })
      expect(await port.deliveryFailed('c_1', 'kit_refused')).toEqual({ status: 'not_configured' })
      expect(await outbox.list('c_1', { limit: 10 })).toEqual([])
    })

    it('refuses a subscriber event without its member, and a trouble event with one', async () => {
      const port = portFor(await dialect.fresh())
      await expect(
        port.emit({ type: 'kit.subscriber.unsubscribed', communityId: 'c_1', kit: kitSide('cancelled'), observedAt: 0 }),
      ).rejects.toMatchObject({ code: 'member_required' })
      await expect(
        port.emit({ type: 'kit.connection.invalid', communityId: 'c_1', member: member('m_1'), observedAt: 0 }),
      ).rejects.toMatchObject({ code: 'member_not_allowed' })
    })

    it('claims one member’s events one at a time, in the order observed, and other members’ alongside', async () => {
      const outbox = await dialect.fresh()
      const port = portFor(outbox)
      const first = await port.emit(unsubscribed('c_1', 'm_1'))
      const second = await port.emit(renamed('c_1', 'm_1', 'Adelaide'))
      const other = await port.emit(unsubscribed('c_1', 'm_2'))
      const invalid = await port.connectionInvalid('c_1')
      const ids = (rows: { id: string }[]) => rows.map((r) => r.id).sort()
      const claimed = await outbox.claim('a', Date.now(), 60_000, 10)
      expect(ids(claimed)).toEqual(ids([first, other, invalid] as { id: string }[]))

      // The first one fails and waits for a later attempt: the second still waits behind it.
      const firstRow = claimed.find((r) => r.id === (first as { id: string }).id)!
      expect(
        await outbox.settle(firstRow.seq, 'a', { state: 'pending', nextAttemptAt: Date.now() - 1, lastError: 'http_503' }, Date.now()),
      ).toBe(true)
      const again = await outbox.claim('a', Date.now(), 60_000, 10)
      expect(again.map((r) => r.id)).toEqual([(first as { id: string }).id])
      expect(again[0]).toMatchObject({ attempts: 1, lastError: 'http_503' })
      expect(await outbox.settle(again[0]!.seq, 'a', { state: 'sent' }, Date.now())).toBe(true)
      expect((await outbox.claim('a', Date.now(), 60_000, 10)).map((r) => r.id)).toEqual([(second as { id: string }).id])
    })

    it('leases an event to one owner at a time, and to another once the lease ran out', async () => {
      const outbox = await dialect.fresh()
      await portFor(outbox).emit(unsubscribed('c_1', 'm_1'))
      const t = Date.now()
      const [leased] = await outbox.claim('a', t, 1000, 10)
      expect(leased).toBeDefined()
      expect(await outbox.claim('b', t + 999, 1000, 10)).toEqual([])
      const [taken] = await outbox.claim('b', t + 1001, 1000, 10)
      expect(taken?.id).toBe(leased!.id)
      expect(await outbox.settle(leased!.seq, 'a', { state: 'sent' }, t + 1002), 'the old owner lost its lease').toBe(false)
      expect(await outbox.settle(taken!.seq, 'b', { state: 'sent' }, t + 1002)).toBe(true)
      expect(await outbox.get('c_1', leased!.id)).toMatchObject({ state: 'sent', attempts: 1, sentAt: t + 1002 })
    })

    it('lists, counts and retries a community’s own events only', async () => {
      const outbox = await dialect.fresh()
      const port = portFor(outbox)
      const mine = (await port.emit(unsubscribed('c_1', 'm_1'))) as { id: string }
      await port.emit(unsubscribed('c_2', 'm_9'))
      const [row] = await outbox.claim('a', Date.now(), 60_000, 10).then((rows) => rows.filter((r) => r.id === mine.id))
      await outbox.settle(row!.seq, 'a', { state: 'failed', lastError: 'http_410' }, Date.now())
      expect(await outbox.get('c_2', mine.id)).toBeUndefined()
      expect(await outbox.retry('c_2', mine.id, Date.now(), Date.now() + GIVE_UP_AFTER_MS)).toBe(false)
      expect(await outbox.list('c_2', { state: 'failed', limit: 10 })).toEqual([])
      expect(await outbox.summary('c_1', 0)).toEqual([{ type: 'kit.subscriber.unsubscribed', state: 'failed', count: 1 }])
      expect(await outbox.retry('c_1', mine.id, Date.now(), Date.now() + GIVE_UP_AFTER_MS)).toBe(true)
      expect(await outbox.get('c_1', mine.id)).toMatchObject({ state: 'pending', lastError: 'http_410' })
      expect(await outbox.retry('c_1', mine.id, Date.now(), Date.now() + GIVE_UP_AFTER_MS), 'only a failed one').toBe(false)
    })

    it('tells of deliveries failing for good at most once an hour, with the count since the last notice and the commonest reasons', async () => {
      const outbox = await dialect.fresh()
      const time = clock()
      const port = portFor(outbox, time.now)
      const first = await port.deliveryFailed('c_1', 'kit_refused')
      expect(first?.status).toBe('stored')
      for (const reason of ['kit_unavailable', 'kit_refused', 'kit_unavailable', 'kit_unavailable']) {
        time.advance(60_000)
        expect(await port.deliveryFailed('c_1', reason), 'within the hour').toBeNull()
      }
      expect(await port.deliveryFailed('c_2', 'kit_refused'), 'another community has its own hour').toMatchObject({ status: 'stored' })
      expect(await outbox.unreportedFailures(time.now() - HOUR), 'a community in its quiet hour is not looked at').toEqual([])
      expect(await port.reportWaitingFailures()).toBe(0)
      time.advance(HOUR)
      expect(await outbox.unreportedFailures(time.now() - HOUR), 'only the community with failures left to tell').toEqual(['c_1'])
      expect(await port.reportWaitingFailures()).toBe(1)
      expect(await port.reportWaitingFailures(), 'nothing left to tell').toBe(0)
      const notices = (await outbox.list('c_1', { limit: 10 })).map(
        (e) => JSON.parse(e.body) as { type: string; subject?: string; data: Record<string, unknown> },
      )
      expect(notices.map((n) => n.data.failed)).toEqual([4, 1])
      expect(notices[0]!.data.reasons).toEqual(['kit_unavailable', 'kit_refused'])
      expect(notices[1]!.data.reasons).toEqual(['kit_refused'])
      for (const notice of notices) {
        expect(notice.type).toBe('kit.deliveries.failing')
        expect(notice.subject).toBeUndefined()
        expect(notice.data.member).toBeUndefined()
      }
    })

    it('POSTs each event signed, as a CloudEvent exactly as §7 shows, and marks it sent on 2xx', async () => {
      const outbox = await dialect.fresh()
      const port = portFor(outbox)
      const observedAt = Date.UTC(2026, 11, 7, 4, 59, 58)
      const stored = (await port.emit({ ...renamed('c_123', 'm_456', 'Adelaide'), observedAt })) as { id: string }
      await port.connectionInvalid('c_123')
      expect(stored.id).toMatch(/^kitevt_[0-9A-HJKMNP-TV-Z]{26}$/)
      const sender = senderFor(outbox)
      expect(await sender.tick()).toBe(2)
      expect(receiver.received.every((r) => r.verified && r.contentType === 'application/cloudevents+json')).toBe(true)
      const update = receiver.received.find((r) => r.id === stored.id)!
      expect(update.body).toEqual({
        specversion: '1.0',
        id: stored.id,
        source: 'kit-for-appstation',
        type: 'kit.subscriber.updated',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        communityid: 'c_123',
        subject: 'members/m_456',
        data: {
          member: { id: 'm_456', email: 'm_456@example.com' },
          kit: { subscriber_id: 1001, state: 'active', email_address: 'm1001@example.com', first_name: 'Ada' },
          changes: { first_name: { from: 'Ada', to: 'Adelaide' } },
          observed_at: '2026-12-07T04:59:58Z',
        },
      })
      const invalid = receiver.received.find((r) => r.body.type === 'kit.connection.invalid')!
      expect(invalid.body.subject).toBeUndefined()
      expect(Object.keys(invalid.body.data)).toEqual(['observed_at'])
      expect((await outbox.list('c_123', { limit: 10 })).map((e) => e.state)).toEqual(['sent', 'sent'])
    })

    it('sends the same id and body again after a 5xx, a dropped connection and a timeout, then marks it sent', async () => {
      const outbox = await dialect.fresh()
      const stored = (await portFor(outbox).emit(unsubscribed('c_1', 'm_1'))) as { id: string }
      const answers: ('hang' | 'drop' | number)[] = [503, 'drop', 'hang', 302, 200]
      receiver.answer = (_r, n) => answers[n - 1] ?? 200
      const sender = senderFor(outbox, { timeoutMs: 300 })
      const errors: (string | null)[] = []
      for (let i = 0; i < answers.length; i += 1) {
        await waitFor(async () => (await outbox.nextDue()) !== null && (await outbox.nextDue())! <= Date.now(), {
          what: 'the next attempt to be due',
        })
        expect(await sender.tick()).toBe(1)
        errors.push((await outbox.get('c_1', stored.id))!.lastError)
      }
      expect(errors).toEqual(['http_503', 'network', 'timeout', 'http_302', null])
      expect(receiver.received.map((r) => r.id)).toEqual(Array(5).fill(stored.id))
      expect(new Set(receiver.received.map((r) => r.raw)).size).toBe(1)
      expect(receiver.received.every((r) => r.verified)).toBe(true)
      expect(await outbox.get('c_1', stored.id)).toMatchObject({ state: 'sent', attempts: 5 })
    })

    it('delivers everything once the receiver is back, each member’s events in the order observed', async () => {
      const outbox = await dialect.fresh()
      const port = portFor(outbox)
      const order = new Map<string, string[]>()
      for (let round = 0; round < 4; round += 1) {
        for (const m of ['m_1', 'm_2', 'm_3']) {
          const stored = (await port.emit(renamed('c_1', m, `Name ${round}`))) as { id: string }
          order.set(m, [...(order.get(m) ?? []), stored.id])
        }
      }
      let down = true
      receiver.answer = () => (down ? 503 : 204)
      senderFor(outbox).start()
      await waitFor(() => receiver.received.length >= 9, { what: 'attempts while the receiver is down' })
      down = false
      await waitFor(() => receiver.accepted().length === 12, { timeoutMs: 15_000, what: 'every event after the receiver came back' })
      for (const [m, ids] of order) {
        const seen = receiver.received.filter((r) => r.body.subject === `members/${m}`).map((r) => r.id)
        // Retries repeat an id, but a member's later event never arrives before an earlier one was accepted.
        expect(
          seen.filter((id, i) => seen[i - 1] !== id),
          m,
        ).toEqual(ids)
      }
      await waitFor(async () => (await outbox.list('c_1', { state: 'sent', limit: 20 })).length === 12, {
        what: 'every event recorded as sent',
      })
      expect(await outbox.summary('c_1', 0)).toEqual([{ type: 'kit.subscriber.updated', state: 'sent', count: 12 }])
      expect(receiver.received.every((r) => r.verified)).toBe(true)
    })

    it("counts only events that can go as next due: a member's later event waits behind the earlier one", async () => {
      const outbox = await dialect.fresh()
      const time = clock()
      const port = portFor(outbox, time.now)
      await port.emit(unsubscribed('c_1', 'm_1', time.now()))
      await port.emit(renamed('c_1', 'm_1', 'Adelaide'))
      const [first] = await outbox.claim('a', time.now(), 60_000, 10)
      expect(first?.type).toBe('kit.subscriber.unsubscribed')
      await outbox.settle(first!.seq, 'a', { state: 'pending', lastError: 'http_503', nextAttemptAt: time.now() + HOUR }, time.now())
      // The rename is due by its own time, but cannot go before the unsubscribe: nothing is due for an hour.
      expect(await outbox.nextDue()).toBe(time.now() + HOUR)
    })

    it('sends what waits for a retry at once when the platform answers again', async () => {
      const outbox = await dialect.fresh()
      const port = portFor(outbox)
      for (const m of ['m_1', 'm_2', 'm_3']) await port.emit(unsubscribed('c_1', m))
      receiver.answer = () => 503
      const sender = senderFor(outbox, { backoff: { baseMs: HOUR, maxMs: HOUR } })
      expect(await sender.tick()).toBe(3)
      expect((await outbox.list('c_1', { state: 'pending', limit: 10 })).every((e) => e.nextAttemptAt > Date.now() + HOUR / 4)).toBe(true)
      receiver.answer = () => 204
      await port.emit(unsubscribed('c_1', 'm_4'))
      expect(await sender.tick(), 'the new one goes, and brings the others forward').toBe(1)
      expect(await sender.tick()).toBe(3)
      expect(await outbox.list('c_1', { state: 'pending', limit: 10 })).toEqual([])
    })

    it('keeps trying for 72 hours, then marks the event failed', async () => {
      const outbox = await dialect.fresh()
      const time = clock(Date.now())
      const stored = (await portFor(outbox, time.now).emit(unsubscribed('c_1', 'm_1'))) as { id: string }
      receiver.answer = () => 500
      const sender = senderFor(outbox, { now: time.now, backoff: { baseMs: 10 * 60_000, maxMs: HOUR } })
      let attempts = 0
      while ((await outbox.get('c_1', stored.id))!.state === 'pending') {
        const due = (await outbox.nextDue())!
        time.set(Math.max(time.now(), due))
        expect(await sender.tick()).toBe(1)
        attempts += 1
        expect(attempts).toBeLessThan(200)
      }
      const row = (await outbox.get('c_1', stored.id))!
      expect(row).toMatchObject({ state: 'failed', lastError: 'http_500', attempts })
      expect(row.updatedAt - row.createdAt).toBeGreaterThanOrEqual(GIVE_UP_AFTER_MS)
      expect(row.updatedAt - row.createdAt).toBeLessThan(GIVE_UP_AFTER_MS + HOUR)
      expect(new Set(receiver.received.map((r) => r.id))).toEqual(new Set([stored.id]))
    })

    it('forgets finished events past retention, keeping only the guard of a reported state, without the person’s data', async () => {
      const outbox = await dialect.fresh()
      const time = clock()
      const port = portFor(outbox, time.now)
      const state = (await port.emit(unsubscribed('c_1', 'm_1', time.now()))) as { id: string }
      const update = (await port.emit(renamed('c_1', 'm_2', 'Adelaide'))) as { id: string }
      await port.deliveryFailed('c_1', 'kit_refused')
      for (const row of await outbox.claim('a', time.now(), 60_000, 10)) await outbox.settle(row.seq, 'a', { state: 'sent' }, time.now())
      time.advance(HOUR)
      const waiting = (await port.emit(renamed('c_1', 'm_3', 'Grace'))) as { id: string }
      await port.deliveryFailed('c_1', 'kit_refused')

      expect(await outbox.purge(time.now() - HOUR / 2, 100)).toBe(4)
      expect(await outbox.get('c_1', update.id)).toBeUndefined()
      expect(await outbox.get('c_1', waiting.id), 'still to send').toMatchObject({ state: 'pending' })
      const kept = (await outbox.get('c_1', state.id))!
      expect(kept).toMatchObject({ state: 'sent', memberId: null, body: '{}' })
      expect(await port.emit(unsubscribed('c_1', 'm_1', time.now())), 'the state stays reported').toEqual({ status: 'reported_before' })
      expect(
        (await outbox.list('c_1', { state: 'pending', limit: 10 })).map((e) => e.type),
        'still to send',
      ).toEqual(['kit.deliveries.failing', 'kit.subscriber.updated'])
      expect(await outbox.purge(time.now() - HOUR / 2, 100), 'nothing more to do').toBe(0)
    })

    it('purges past retention while it has nothing to send', async () => {
      const outbox = await dialect.fresh()
      const sent = (await portFor(outbox).emit(renamed('c_1', 'm_1', 'Adelaide'))) as { id: string }
      senderFor(outbox, { retentionMs: 60 * 60_000 }).start()
      await waitFor(async () => (await outbox.get('c_1', sent.id))?.state === 'sent', { what: 'the event sent' })
      expect(await outbox.get('c_1', sent.id), 'within retention').toBeDefined()
      const time = clock(Date.now() + 2 * HOUR)
      senderFor(outbox, { retentionMs: 60 * 60_000, now: time.now }).start()
      await waitFor(async () => (await outbox.get('c_1', sent.id)) === undefined, { what: 'the event purged' })
    })

    it.skipIf(!dialect.another)('never sends one event twice at once from two instances sharing the database', async () => {
      const outbox = await dialect.fresh()
      const other = await dialect.another!()
      const port = portFor(outbox)
      for (let i = 0; i < 40; i += 1) await port.emit(renamed('c_1', `m_${i % 10}`, `Name ${i}`))
      receiver.answer = () => 204
      const slow = startPlatformReceiver(receiver.secret)
      const slowReceiver = await slow
      const inFlight = new Set<string>()
      let overlaps = 0
      slowReceiver.answer = (r) => {
        if (inFlight.has(r.id)) overlaps += 1
        inFlight.add(r.id)
        setTimeout(() => inFlight.delete(r.id), 30)
        return 204
      }
      try {
        for (const o of [outbox, other, outbox, other]) senderFor(o, { url: slowReceiver.url, batch: 3 }).start()
        await waitFor(() => slowReceiver.accepted().length === 40, { timeoutMs: 20_000, what: 'every event from four senders' })
        expect(overlaps).toBe(0)
        expect(slowReceiver.received).toHaveLength(40)
      } finally {
        for (const sender of senders.splice(0)) await sender.stop()
        await slowReceiver.close()
      }
    })
  })
}
