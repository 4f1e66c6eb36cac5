// Over 400 lines: one behavioural suite for the delivery queue and the Activity reads, run unchanged against both dialects.
/**
 * One behavioural suite for the delivery queue and the Activity reads, run against both dialects:
 * the embedded SQLite queue and the shared PostgreSQL one. Then what only the shared one must
 * survive: several instances (pools) claiming and enqueueing against one database at once.
 */
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import type { ClaimTurnsOrder } from '../server/core/turns.ts'
import { type DeliveryQueue, type EnqueueResult, type NewDelivery, type Outcome, type QueuedDelivery } from '../server/core/queue.ts'
import { DeliveryReadStore } from '../server/storage/common/deliveries.ts'
import { postgresRunner, sqliteRunner } from '../server/storage/common/sql.ts'
import { PostgresQueue } from '../server/storage/postgres/queue.ts'
import { SqliteQueue } from '../server/storage/sqlite/queue.ts'
import type { DeliveryReads } from '../server/core/storage.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()

interface Store {
  queue: DeliveryQueue
  reads: DeliveryReads
  /** Test set-up the interfaces do not offer (syncs); `$1`-style parameters, each used once, in order. */
  sql(text: string, params?: unknown[]): Promise<void>
}

interface Dialect {
  name: string
  available: boolean
  setup(): Promise<void>
  /** A store over empty tables. */
  fresh(): Promise<Store>
  teardown(): Promise<void>
}

function sqliteDialect(): Dialect {
  return {
    name: 'SQLite',
    available: true,
    setup: async () => {},
    fresh: async () => {
      const { sqlite } = openDatabase(':memory:')
      return {
        queue: new SqliteQueue(sqlite),
        reads: new DeliveryReadStore(sqliteRunner(sqlite)),
        sql: async (text, params = []) => {
          sqlite.prepare(text.replace(/\$\d+/g, '?')).run(...params)
        },
      }
    },
    teardown: async () => {},
  }
}

function postgresDialect(): Dialect {
  let database: TestDatabase | undefined
  let pool: pg.Pool | undefined
  const opened = () => {
    if (!pool) throw new Error('PostgreSQL dialect used before setup()')
    return pool
  }
  return {
    name: 'PostgreSQL',
    available: pgUp,
    setup: async () => {
      database = await createTestDatabase('kitqueue')
      ;({ pool } = await openPostgres(database.url))
    },
    fresh: async () => {
      const p = opened()
      await p.query('TRUNCATE events, deliveries, ordering_marks, syncs RESTART IDENTITY')
      return {
        queue: new PostgresQueue(p),
        reads: new DeliveryReadStore(postgresRunner(p)),
        sql: async (text, params = []) => {
          await p.query(text, params)
        },
      }
    },
    teardown: async () => {
      await pool?.end()
      await database?.drop()
    },
  }
}

let counter = 0
/** A new event with unique ids; every field can be overridden. */
function event(overrides: Partial<NewDelivery> = {}): NewDelivery {
  counter += 1
  const now = Date.now()
  const memberId = overrides.memberId ?? `m_${counter}`
  return {
    communityId: 'c_alpha',
    eventId: `evt_${counter}`,
    eventType: 'user.signed_up',
    memberId,
    memberEmail: `${memberId}@example.com`,
    eventTime: now + counter,
    payload: JSON.stringify({ n: counter }),
    receivedAt: now,
    ...overrides,
  }
}

const LEASE_MS = 30_000
const succeeded: Outcome = { status: 'succeeded', lastError: null, kitRequests: 1 }

const claim = (
  queue: DeliveryQueue,
  owner = 'owner_a',
  options: { now?: number; limit?: number; exclude?: string[]; leaseMs?: number; turns?: ClaimTurnsOrder } = {},
) =>
  queue.claim({
    owner,
    limit: options.limit ?? 100,
    leaseMs: options.leaseMs ?? LEASE_MS,
    now: options.now ?? Date.now(),
    exclude: options.exclude ?? [],
    ...(options.turns ? { turns: options.turns } : {}),
  })

const ids = (claimed: QueuedDelivery[]) => claimed.map((d) => d.eventId)

/** Enqueues events of distinct members, claims them all and settles each with the outcome. */
async function finishAs(queue: DeliveryQueue, outcome: Outcome, events: NewDelivery[]): Promise<void> {
  for (const e of events) expect((await queue.enqueue(e)).accepted).toBe(true)
  const claimed = await claim(queue, 'owner_finish')
  expect(claimed).toHaveLength(events.length)
  for (const d of claimed) expect(await queue.settle(d.seq, 'owner_finish', outcome)).toBe(true)
}

const dialects = [sqliteDialect(), postgresDialect()]

describe.each(dialects)('the $name queue', (dialect) => {
  describe.skipIf(!dialect.available)('on a database of its own', () => {
    let store: Store
    let queue: DeliveryQueue
    beforeAll(() => dialect.setup())
    afterAll(() => dialect.teardown())
    beforeEach(async () => {
      store = await dialect.fresh()
      queue = store.queue
    })

    describe('enqueue', () => {
      it('accepts an event id once per community and records a delivery for it', async () => {
        const e = event()
        const first = await queue.enqueue(e)
        expect(first.accepted).toBe(true)
        expect(first.deliveryId).toMatch(/^dlv_[0-9a-f]{32}$/)
        expect(await queue.enqueue({ ...e, payload: '{"again":true}' })).toEqual({ accepted: false, deliveryId: null })
        expect((await queue.enqueue({ ...e, communityId: 'c_bravo' })).accepted).toBe(true)

        const [claimed] = await claim(queue, 'owner_a', { exclude: ['c_bravo'] })
        expect(claimed?.payload).toBe(e.payload)
        expect(claimed?.id).toBe(first.deliveryId)
      })

      it('accepts only the first of the same event arriving together, and answers each call in order', async () => {
        const e = event()
        const other = event()
        const results = await Promise.all([
          queue.enqueue(e),
          queue.enqueue(other),
          queue.enqueue({ ...e, payload: '"late"' }),
          queue.enqueue(e),
        ])
        expect(results.map((r) => r.accepted)).toEqual([true, true, false, false])
        expect(results[2]?.deliveryId).toBeNull()
        expect(new Set(results.slice(0, 2).map((r) => r.deliveryId)).size).toBe(2)
        expect((await queue.depth()).pending).toBe(2)
        const claimed = await claim(queue)
        expect(claimed.find((d) => d.eventId === e.eventId)?.payload).toBe(e.payload)
      })

      it('records an event of an unknown type as skipped, never to be claimed', async () => {
        const e = event({ eventType: 'user.unknown', skippedReason: 'No mapping for user.unknown', reason: 'unknown_event_type' })
        const { deliveryId } = await queue.enqueue(e)
        expect(await claim(queue)).toEqual([])
        const record = await store.reads.get('c_alpha', deliveryId as string)
        expect(record).toMatchObject({
          status: 'skipped',
          last_error: 'No mapping for user.unknown',
          reason: 'unknown_event_type',
          attempts: 0,
        })
      })
    })

    describe('claim', () => {
      it("hands out one member's events one at a time, in event order rather than arrival order", async () => {
        const now = Date.now()
        const later = event({ memberId: 'm_ada', eventTime: now + 20 })
        const earlier = event({ memberId: 'm_ada', eventTime: now + 10 })
        await queue.enqueue(later)
        await queue.enqueue(earlier)

        const first = await claim(queue, 'owner_a')
        expect(ids(first)).toEqual([earlier.eventId])
        expect(await claim(queue, 'owner_b')).toEqual([])

        expect(await queue.settle(first[0]!.seq, 'owner_a', succeeded)).toBe(true)
        expect(ids(await claim(queue, 'owner_b'))).toEqual([later.eventId])
      })

      it('keeps a member waiting while an earlier event of theirs is retrying or held', async () => {
        const first = event({ memberId: 'm_bo' })
        const second = event({ memberId: 'm_bo' })
        await queue.enqueue(first)
        await queue.enqueue(second)
        const [d] = await claim(queue)
        await queue.settle(d!.seq, 'owner_a', {
          status: 'retrying',
          lastError: 'Kit unavailable',
          kitRequests: 1,
          nextAttemptAt: Date.now() + 60_000,
        })
        expect(await claim(queue)).toEqual([])
        const [again] = await claim(queue, 'owner_a', { now: Date.now() + 61_000 })
        await queue.settle(again!.seq, 'owner_a', { status: 'held', lastError: 'The Kit key was refused', kitRequests: 1 })
        expect(await claim(queue)).toEqual([])
      })

      it("claims live events before snapshots, and a member's snapshot never holds up their live event", async () => {
        const now = Date.now()
        const snapshotOfX = event({ memberId: 'm_x', eventType: 'member.snapshot', eventTime: now })
        const snapshotOfY = event({ memberId: 'm_y', eventType: 'member.snapshot', eventTime: now })
        const liveOfY = event({ memberId: 'm_y', eventTime: now + 5 })
        const liveOfZ = event({ memberId: 'm_z', eventTime: now + 6 })
        for (const e of [snapshotOfX, snapshotOfY, liveOfY, liveOfZ]) await queue.enqueue(e)

        expect(ids(await claim(queue, 'owner_a', { limit: 2 }))).toEqual([liveOfY.eventId, liveOfZ.eventId])
        // m_y's snapshot waits while m_y has a delivery in flight.
        expect(ids(await claim(queue, 'owner_b'))).toEqual([snapshotOfX.eventId])
      })

      it("keeps a snapshot behind the member's earlier live events", async () => {
        const now = Date.now()
        const live = event({ memberId: 'm_w', eventTime: now })
        const snapshot = event({ memberId: 'm_w', eventType: 'member.snapshot', eventTime: now + 1 })
        await queue.enqueue(live)
        await queue.enqueue(snapshot)
        const first = await claim(queue)
        expect(ids(first)).toEqual([live.eventId])
        await queue.settle(first[0]!.seq, 'owner_a', {
          status: 'retrying',
          lastError: 'Kit unavailable',
          kitRequests: 1,
          nextAttemptAt: now + 60_000,
        })
        expect(await claim(queue)).toEqual([])
      })

      it('leaves out the communities it is told to exclude, and waits for what is not yet due', async () => {
        const alpha = event()
        const bravo = event({ communityId: 'c_bravo' })
        const future = event({ communityId: 'c_bravo', receivedAt: Date.now() + 60_000 })
        for (const e of [alpha, bravo, future]) await queue.enqueue(e)
        expect(ids(await claim(queue, 'owner_a', { exclude: ['c_alpha'] }))).toEqual([bravo.eventId])
      })

      it("claims a quiet community's event ahead of a busy community's older backlog, also of its put-back delivery", async () => {
        const now = Date.now()
        const backlog = Array.from({ length: 6 }, () => event({ communityId: 'c_busy', receivedAt: now - 60_000 }))
        for (const e of backlog) await queue.enqueue(e)
        const [first] = await claim(queue, 'owner_a', { limit: 1 })
        expect(first?.eventId).toBe(backlog[0]?.eventId)
        // Put back for Kit's budget: it keeps its place in its own community's line.
        await queue.settle(first!.seq, 'owner_a', { status: 'pending', lastError: null, kitRequests: 30, nextAttemptAt: first!.receivedAt })

        const quiet = event({ communityId: 'c_quiet', receivedAt: now })
        await queue.enqueue(quiet)
        // The busy community has used the consumer's slots for a while; the quiet one not at all.
        const turns = { floor: 1000, places: new Map([['c_busy', 31_000]]) }
        expect(ids(await claim(queue, 'owner_a', { limit: 1, turns }))).toEqual([quiet.eventId])
        expect(ids(await claim(queue, 'owner_a', { limit: 1, turns }))).toEqual([backlog[0]?.eventId])
      })

      it('serves each community with work due once before serving any of them again', async () => {
        const now = Date.now()
        const alpha = Array.from({ length: 4 }, () => event({ communityId: 'c_alpha', receivedAt: now - 3000 }))
        const bravo = Array.from({ length: 4 }, () => event({ communityId: 'c_bravo', receivedAt: now - 2000 }))
        const charlie = event({ communityId: 'c_charlie', receivedAt: now - 1000 })
        for (const e of [...alpha, ...bravo, charlie]) await queue.enqueue(e)
        expect(ids(await claim(queue, 'owner_a', { limit: 4 }))).toEqual([alpha[0], bravo[0], charlie, alpha[1]].map((e) => e?.eventId))
        // Alpha has used more of the slots: the next claim starts with bravo.
        const turns = {
          floor: 0,
          places: new Map([
            ['c_alpha', 2000],
            ['c_bravo', 1000],
          ]),
        }
        expect(ids(await claim(queue, 'owner_a', { limit: 2, turns }))).toEqual([bravo[1], alpha[2]].map((e) => e?.eventId))
      })

      it('returns the delivery as stored, numbers as numbers', async () => {
        const e = event()
        const { deliveryId } = await queue.enqueue(e)
        const [d] = await claim(queue)
        expect(d).toEqual({
          seq: expect.any(Number) as number,
          id: deliveryId,
          communityId: e.communityId,
          eventId: e.eventId,
          eventType: e.eventType,
          memberId: e.memberId,
          memberEmail: e.memberEmail,
          eventTime: e.eventTime,
          attempts: 0,
          kitRequests: 0,
          receivedAt: e.receivedAt,
          payload: e.payload,
          replay: 0,
        })
      })
    })

    describe('claimBulk', () => {
      const bulk = (owner = 'owner_a', limit = 100) =>
        queue.claimBulk({ owner, communityId: 'c_alpha', limit, leaseMs: LEASE_MS, now: Date.now() })

      it("leases only an initial sync's members and replayed work, one per member, none ahead of the member's earlier events", async () => {
        const live = event()
        await queue.enqueue(live)
        const snapshot = event({ eventType: 'member.snapshot' })
        await queue.enqueue(snapshot)
        // The member's later snapshot waits for the earlier one.
        await queue.enqueue(event({ eventType: 'member.snapshot', memberId: snapshot.memberId }))
        const recorded = event({ skippedReason: 'No Kit account is connected.', reason: 'not_connected' })
        await queue.enqueue(recorded)
        await queue.enqueue(event({ communityId: 'c_bravo', eventType: 'member.snapshot' }))
        // Recorded work waits until the owner replays it.
        expect((await bulk()).map((d) => d.eventId)).toEqual([snapshot.eventId])
        await queue.release('owner_a')
        expect(await queue.retryMany('c_alpha', { status: 'skipped', reason: 'not_connected' }, 10, Date.now())).toMatchObject({
          queued: 1,
        })

        const claimed = await bulk()
        expect(claimed).toHaveLength(2)
        expect(claimed.find((d) => d.eventId === recorded.eventId)?.replay).toBe(1)
        expect(claimed.find((d) => d.eventId === snapshot.eventId)?.replay).toBe(0)
        // What one owner leased is not claimed again by another.
        expect(await bulk('owner_b')).toEqual([])
        expect((await claim(queue, 'owner_b')).filter((d) => d.communityId === 'c_alpha').map((d) => d.eventId)).toEqual([live.eventId])
      })
    })

    describe('settle', () => {
      it('refuses an outcome after the lease went to another owner, and writes none of its marks', async () => {
        const e = event()
        await queue.enqueue(e)
        const now = Date.now()
        const [mine] = await claim(queue, 'owner_a', { now, leaseMs: 1000 })
        const [theirs] = await claim(queue, 'owner_b', { now: now + 2000 })
        expect(theirs?.seq).toBe(mine?.seq)

        const mark = { scope: 'subscription:s_1', eventTime: e.eventTime, eventId: e.eventId }
        expect(await queue.settle(mine!.seq, 'owner_a', { ...succeeded, marks: [mark] })).toBe(false)
        expect((await queue.marks('c_alpha', [mark.scope])).size).toBe(0)

        expect(await queue.settle(theirs!.seq, 'owner_b', { ...succeeded, marks: [mark] })).toBe(true)
        expect(await queue.marks('c_alpha', [mark.scope])).toEqual(new Map([[mark.scope, mark]]))
      })

      it("writes ordering marks with the outcome, for the delivery's community only, and a later outcome replaces them", async () => {
        const first = event()
        const second = event()
        await queue.enqueue(first)
        await queue.enqueue(second)
        const [a, b] = await claim(queue)
        const older = { scope: 'access:m_1:gold', eventTime: 100, eventId: 'evt_old' }
        const other = { scope: 'subscription:s_9', eventTime: 150, eventId: 'evt_other' }
        await queue.settle(a!.seq, 'owner_a', { ...succeeded, marks: [older, other] })
        const newer = { scope: older.scope, eventTime: 200, eventId: 'evt_new' }
        await queue.settle(b!.seq, 'owner_a', { ...succeeded, marks: [newer] })

        const marks = await queue.marks('c_alpha', [older.scope, other.scope, 'subscription:none'])
        expect(marks).toEqual(
          new Map([
            [older.scope, newer],
            [other.scope, other],
          ]),
        )
        expect((await queue.marks('c_bravo', [older.scope, other.scope])).size).toBe(0)
      })

      it('counts an attempt only when Kit was asked or the outcome is a verdict', async () => {
        const e = event()
        const { deliveryId } = await queue.enqueue(e)
        const attempts = async () => (await store.reads.get('c_alpha', deliveryId as string))?.attempts

        let [d] = await claim(queue)
        await queue.settle(d!.seq, 'owner_a', { status: 'pending', lastError: null, kitRequests: 0, nextAttemptAt: Date.now() })
        expect(await attempts()).toBe(0)
        ;[d] = await claim(queue)
        await queue.settle(d!.seq, 'owner_a', {
          status: 'retrying',
          lastError: 'Kit unavailable',
          kitRequests: 2,
          nextAttemptAt: Date.now(),
        })
        expect(await attempts()).toBe(1)
        ;[d] = await claim(queue)
        expect(d).toMatchObject({ attempts: 1, kitRequests: 2 })
        await queue.settle(d!.seq, 'owner_a', { status: 'skipped', lastError: 'Nothing to do', kitRequests: 0 })
        expect(await store.reads.get('c_alpha', deliveryId as string)).toMatchObject({ attempts: 1, kit_requests: 2, status: 'skipped' })
      })

      it('keeps the steps of the attempt', async () => {
        const { deliveryId } = await queue.enqueue(event())
        const [d] = await claim(queue)
        const steps = [{ action: 'tag.added' as const, target: 'VIP', detail: null }]
        await queue.settle(d!.seq, 'owner_a', { ...succeeded, steps })
        expect(JSON.parse((await store.reads.get('c_alpha', deliveryId as string))?.steps ?? '')).toEqual(steps)
      })
      it('records a retry due at a jittered, fractional time (to the millisecond)', async () => {
        const { deliveryId } = await queue.enqueue(event())
        const [d] = await claim(queue)
        const due = Date.now() + 1234.5678
        expect(
          await queue.settle(d!.seq, 'owner_a', {
            status: 'retrying',
            lastError: 'Kit asked us to slow down',
            kitRequests: 1,
            nextAttemptAt: due,
          }),
        ).toBe(true)
        const row = await store.reads.get('c_alpha', deliveryId as string)
        expect(row).toMatchObject({ status: 'retrying', last_error: 'Kit asked us to slow down' })
        expect(Math.abs((row?.next_attempt_at ?? 0) - due)).toBeLessThan(1)
      })
    })

    describe('leases', () => {
      it('gives back what an owner claimed, so another owner can claim it', async () => {
        await queue.enqueue(event())
        await queue.enqueue(event())
        expect(await claim(queue, 'owner_a')).toHaveLength(2)
        expect(await claim(queue, 'owner_b')).toEqual([])
        expect(await queue.release('owner_a')).toBe(2)
        expect(await claim(queue, 'owner_b')).toHaveLength(2)
      })
    })

    describe('held and retrying work', () => {
      it('resumes held deliveries of the community, except those of a sync that is not running', async () => {
        const plain = event()
        const ofPausedSync = event()
        const ofRunningSync = event()
        const elsewhere = event({ communityId: 'c_bravo' })
        const held: Outcome = { status: 'held', lastError: 'The Kit key was refused', kitRequests: 1 }
        await finishAs(queue, held, [plain, ofPausedSync, ofRunningSync, elsewhere])
        await store.sql(
          `INSERT INTO syncs (id, community_id, status, format, started_at, updated_at) VALUES ($1, 'c_alpha', 'paused', 'csv', 0, 0)`,
          ['sync_paused'],
        )
        await store.sql(
          `INSERT INTO syncs (id, community_id, status, format, started_at, updated_at) VALUES ($1, 'c_alpha', 'running', 'csv', 0, 0)`,
          ['sync_running'],
        )
        await store.sql('UPDATE deliveries SET sync_id = $1 WHERE event_id = $2', ['sync_paused', ofPausedSync.eventId])
        await store.sql('UPDATE deliveries SET sync_id = $1 WHERE event_id = $2', ['sync_running', ofRunningSync.eventId])

        expect(await queue.resumeHeld('c_alpha', Date.now())).toBe(2)
        expect(ids(await claim(queue)).sort()).toEqual([plain.eventId, ofRunningSync.eventId].sort())
        expect(await queue.depth()).toEqual({ pending: 2, retrying: 0, held: 2 })
      })

      it("brings outage retries forward but not waits for Kit's subscriber list, nor another community's, by their reason codes", async () => {
        const outage = event()
        const listLag = event()
        const elsewhere = event({ communityId: 'c_bravo' })
        for (const e of [outage, listLag, elsewhere]) await queue.enqueue(e)
        const later = Date.now() + 60_000
        for (const d of await claim(queue)) {
          // The words do not decide: the outage's read like a list-lag wait, the code says otherwise.
          const wait: Outcome =
            d.eventId === listLag.eventId
              ? { status: 'retrying', reason: 'list_lag', lastError: 'Waiting for the list', kitRequests: 1, nextAttemptAt: later }
              : {
                  status: 'retrying',
                  reason: 'kit_unavailable',
                  lastError: "Waiting for Kit's subscriber list: not really",
                  kitRequests: 1,
                  nextAttemptAt: later,
                }
          await queue.settle(d.seq, 'owner_a', wait)
        }
        const now = Date.now()
        expect(await queue.expediteRetries('c_alpha', now)).toBe(1)
        expect(ids(await claim(queue, 'owner_a', { now }))).toEqual([outage.eventId])
      })
    })

    describe('retry', () => {
      it('re-queues a failed or skipped delivery and refuses the rest, in the community only', async () => {
        const failed = event()
        const skipped = event()
        const done = event()
        await finishAs(queue, { status: 'failed', lastError: 'Kit refused', kitRequests: 1 }, [failed])
        await finishAs(queue, { status: 'skipped', lastError: 'Nothing mapped', kitRequests: 0 }, [skipped])
        await finishAs(queue, succeeded, [done])
        const idOf = async (e: NewDelivery) =>
          (await store.reads.list('c_alpha', { order: 'oldest', limit: 10 })).find((r) => r.event_id === e.eventId)?.id as string

        expect(await queue.retry('c_bravo', await idOf(failed), Date.now())).toEqual({ result: 'not_found' })
        expect(await queue.retry('c_alpha', 'dlv_missing', Date.now())).toEqual({ result: 'not_found' })
        expect(await queue.retry('c_alpha', await idOf(done), Date.now())).toEqual({ result: 'not_retryable', status: 'succeeded' })
        expect(await queue.retry('c_alpha', await idOf(failed), Date.now())).toEqual({ result: 'queued' })
        expect(await queue.retry('c_alpha', await idOf(skipped), Date.now())).toEqual({ result: 'queued' })
        expect(await queue.retry('c_alpha', await idOf(failed), Date.now())).toEqual({ result: 'not_retryable', status: 'pending' })
        expect(ids(await claim(queue)).sort()).toEqual([failed.eventId, skipped.eventId].sort())
      })

      it('re-queues many oldest event first, up to the limit, and says how many are left', async () => {
        const now = Date.now()
        const newest = event({ eventTime: now + 30 })
        const oldest = event({ eventTime: now + 10 })
        const middle = event({ eventTime: now + 20 })
        const elsewhere = event({ communityId: 'c_bravo' })
        await finishAs(queue, { status: 'failed', lastError: 'Kit refused', kitRequests: 1 }, [newest, oldest, middle, elsewhere])

        expect(await queue.retryMany('c_alpha', { status: 'failed' }, 2, now)).toEqual({ queued: 2, remaining: 1 })
        expect(ids(await claim(queue)).sort()).toEqual([oldest.eventId, middle.eventId].sort())
        expect(await queue.retryMany('c_alpha', { status: 'failed' }, 2, now)).toEqual({ queued: 1, remaining: 0 })
      })

      it('re-queues only the skipped deliveries with the named reason', async () => {
        const notConnected = [event(), event()]
        const unmapped = event()
        await finishAs(
          queue,
          { status: 'skipped', reason: 'not_connected', lastError: 'No Kit account connected', kitRequests: 0 },
          notConnected,
        )
        await finishAs(queue, { status: 'skipped', reason: 'empty_mapping', lastError: 'No Kit account connected', kitRequests: 0 }, [
          unmapped,
        ])
        expect(await queue.retryMany('c_alpha', { status: 'skipped', reason: 'not_connected' }, 10, Date.now())).toEqual({
          queued: 2,
          remaining: 0,
        })
        expect(await queue.retryMany('c_alpha', { status: 'failed' }, 10, Date.now())).toEqual({ queued: 0, remaining: 0 })
        expect(ids(await claim(queue)).sort()).toEqual(notConnected.map((e) => e.eventId).sort())
      })
    })

    describe('retention', () => {
      it('deletes finished deliveries with their events, oldest first, and never work still to do', async () => {
        const long = Date.now() - 100 * 86_400_000
        const oldPending = event({ receivedAt: long })
        const finished = [event(), event(), event()]
        await finishAs(queue, succeeded, finished.slice(0, 1))
        await finishAs(queue, { status: 'failed', lastError: 'Kit refused', kitRequests: 1 }, finished.slice(1, 2))
        await finishAs(queue, { status: 'held', lastError: 'The Kit key was refused', kitRequests: 1 }, [event({ receivedAt: long })])
        await finishAs(queue, { status: 'skipped', lastError: 'Nothing mapped', kitRequests: 0 }, finished.slice(2))
        await queue.enqueue(oldPending)

        const after = Date.now() + 1000
        expect(await queue.purgeFinished(after, 2)).toEqual({ deliveries: 2, events: 2 })
        expect(await queue.purgeFinished(after, 10)).toEqual({ deliveries: 1, events: 1 })
        expect(await queue.purgeFinished(after, 10)).toEqual({ deliveries: 0, events: 0 })
        expect(await queue.depth()).toEqual({ pending: 1, retrying: 0, held: 1 })
        // The events went with them: the same ids are new again.
        expect((await queue.enqueue(finished[0]!)).accepted).toBe(true)
        expect((await queue.enqueue(oldPending)).accepted).toBe(false)
      })

      it('keeps finished deliveries updated after the cut-off', async () => {
        await finishAs(queue, succeeded, [event()])
        expect(await queue.purgeFinished(Date.now() - 60_000, 10)).toEqual({ deliveries: 0, events: 0 })
      })
    })

    describe('depth and next due time', () => {
      it('counts waiting deliveries by status', async () => {
        expect(await queue.depth()).toEqual({ pending: 0, retrying: 0, held: 0 })
        await finishAs(queue, { status: 'retrying', lastError: 'Kit unavailable', kitRequests: 1, nextAttemptAt: Date.now() + 60_000 }, [
          event(),
        ])
        await finishAs(queue, { status: 'held', lastError: 'The Kit key was refused', kitRequests: 1 }, [event(), event()])
        await finishAs(queue, succeeded, [event()])
        await queue.enqueue(event())
        expect(await queue.depth()).toEqual({ pending: 1, retrying: 1, held: 2 })
      })

      it('says when the earliest waiting delivery becomes due, ignoring held and finished ones', async () => {
        expect(await queue.nextDueAt()).toBeNull()
        const now = Date.now()
        await finishAs(queue, { status: 'held', lastError: 'The Kit key was refused', kitRequests: 1 }, [event()])
        await finishAs(queue, succeeded, [event()])
        expect(await queue.nextDueAt()).toBeNull()
        await queue.enqueue(event({ receivedAt: now + 50_000 }))
        expect(await queue.nextDueAt()).toBe(now + 50_000)
        await finishAs(queue, { status: 'retrying', lastError: 'Kit unavailable', kitRequests: 1, nextAttemptAt: now + 20_000 }, [event()])
        expect(await queue.nextDueAt()).toBe(now + 20_000)
      })
    })

    describe('Activity reads', () => {
      let reads: DeliveryReads
      beforeEach(() => {
        reads = store.reads
      })

      /** Five deliveries of c_alpha (oldest first) and one of c_bravo. */
      async function seed() {
        const emails = ['ada@example.com', 'a%b@example.com', 'axb@example.com', 'a_b@example.com', 'aab@example.com']
        const events = emails.map((email, i) => event({ memberId: `m_${i}_${counter}`, memberEmail: email }))
        for (const e of events) await store.queue.enqueue(e)
        const bravo = event({ communityId: 'c_bravo', memberEmail: 'ada@example.com' })
        await store.queue.enqueue(bravo)
        return { events, bravo }
      }

      it('lists newest first or oldest first, and pages by seq', async () => {
        const { events } = await seed()
        const newest = await reads.list('c_alpha', { order: 'newest', limit: 2 })
        expect(newest.map((r) => r.event_id)).toEqual([events[4]!.eventId, events[3]!.eventId])
        const next = await reads.list('c_alpha', { order: 'newest', limit: 2, beforeSeq: newest[1]!.seq })
        expect(next.map((r) => r.event_id)).toEqual([events[2]!.eventId, events[1]!.eventId])

        const oldest = await reads.list('c_alpha', { order: 'oldest', limit: 3 })
        expect(oldest.map((r) => r.event_id)).toEqual(events.slice(0, 3).map((e) => e.eventId))
        const rest = await reads.list('c_alpha', { order: 'oldest', limit: 3, afterSeq: oldest[2]!.seq })
        expect(rest.map((r) => r.event_id)).toEqual(events.slice(3).map((e) => e.eventId))
      })

      it('filters by status', async () => {
        const { events } = await seed()
        const [first] = await claim(store.queue, 'owner_a', { limit: 1, exclude: ['c_bravo'] })
        await store.queue.settle(first!.seq, 'owner_a', { status: 'failed', lastError: 'Kit refused', kitRequests: 1 })
        const failed = await reads.list('c_alpha', { order: 'newest', limit: 10, statuses: ['failed'] })
        expect(failed.map((r) => r.event_id)).toEqual([events[0]!.eventId])
        expect(await reads.list('c_alpha', { order: 'newest', limit: 10, statuses: ['pending', 'held'] })).toHaveLength(4)
        expect(await reads.list('c_alpha', { order: 'newest', limit: 10, statuses: ['succeeded'] })).toEqual([])
      })

      it("matches the member's email by substring, taking % and _ literally", async () => {
        await seed()
        const emailsFor = async (text: string) =>
          (await reads.list('c_alpha', { order: 'oldest', limit: 10, memberEmailContains: text })).map((r) => r.member_email)
        expect(await emailsFor('a%b')).toEqual(['a%b@example.com'])
        expect(await emailsFor('a_b')).toEqual(['a_b@example.com'])
        expect(await emailsFor('%')).toEqual(['a%b@example.com'])
        expect(await emailsFor('ada@')).toEqual(['ada@example.com'])
        expect(await emailsFor('nobody')).toEqual([])
      })

      it("never shows another community's deliveries", async () => {
        const { bravo } = await seed()
        const bravoId = (await reads.list('c_bravo', { order: 'newest', limit: 10 }))[0]!.id
        const alpha = await reads.list('c_alpha', { order: 'newest', limit: 10, memberEmailContains: 'ada@' })
        expect(alpha.map((r) => r.event_id)).not.toContain(bravo.eventId)
        expect(await reads.list('c_alpha', { order: 'newest', limit: 100 })).toHaveLength(5)
        expect(await reads.get('c_alpha', bravoId)).toBeUndefined()
        expect(await reads.get('c_bravo', bravoId)).toBeDefined()
      })

      it('reads one delivery with numbers as numbers', async () => {
        const e = event()
        const { deliveryId } = await store.queue.enqueue(e)
        const [d] = await claim(store.queue)
        await store.queue.settle(d!.seq, 'owner_a', {
          status: 'retrying',
          reason: 'kit_unavailable',
          lastError: 'Kit unavailable',
          kitRequests: 3,
          nextAttemptAt: 1_900_000_000_000,
        })
        expect(await reads.get('c_alpha', deliveryId as string)).toEqual({
          seq: d!.seq,
          id: deliveryId,
          event_id: e.eventId,
          event_type: e.eventType,
          member_id: e.memberId,
          member_email: e.memberEmail,
          status: 'retrying',
          attempts: 1,
          last_error: 'Kit unavailable',
          reason: 'kit_unavailable',
          kit_requests: 3,
          steps: '[]',
          next_attempt_at: 1_900_000_000_000,
          created_at: new Date(e.receivedAt).toISOString(),
          updated_at: expect.any(String) as string,
        })
      })

      it('sums up the deliveries skipped for one reason, by event type and distinct members', async () => {
        const skip = (e: NewDelivery) => store.queue.enqueue({ ...e, skippedReason: 'No Kit account connected', reason: 'not_connected' })
        await skip(event({ memberId: 'm_p', eventType: 'user.signed_up' }))
        await skip(event({ memberId: 'm_p', eventType: 'access.granted' }))
        await skip(event({ memberId: 'm_q', eventType: 'access.granted' }))
        await skip(event({ memberId: 'm_r', eventType: 'access.revoked' }))
        await skip(event({ memberId: 'm_s', eventType: 'access.granted', communityId: 'c_bravo' }))
        await store.queue.enqueue(event({ memberId: 'm_t', skippedReason: 'No Kit account connected', reason: 'unknown_event_type' }))

        expect(await reads.skippedSummary('c_alpha', 'not_connected')).toEqual({
          types: [
            { event_type: 'access.granted', count: 2 },
            { event_type: 'access.revoked', count: 1 },
            { event_type: 'user.signed_up', count: 1 },
          ],
          members: 3,
        })
        expect(await reads.skippedSummary('c_alpha', 'empty_mapping')).toEqual({ types: [], members: 0 })
      })
    })
  })
})

/**
 * Holds the next transaction begun on this pool at its COMMIT until `release()`: what another
 * instance sees while this one is in the middle of a claim. `reached` resolves once it is there.
 */
function holdNextCommit(pool: pg.Pool): { reached: Promise<void>; release: () => void } {
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let arrive = () => {}
  const reached = new Promise<void>((resolve) => {
    arrive = resolve
  })
  const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>
  pool.connect = (async () => {
    pool.connect = connect as typeof pool.connect
    const client = await connect()
    const query = client.query.bind(client) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>
    client.query = (async (text: string, values?: unknown[]) => {
      if (text === 'COMMIT') {
        client.query = query as typeof client.query
        arrive()
        await released
      }
      return query(text, values)
    }) as typeof client.query
    return client
  }) as typeof pool.connect
  return { reached, release }
}

describe.skipIf(!pgUp)('the PostgreSQL queue shared by several instances', () => {
  let database: TestDatabase
  let pools: pg.Pool[] = []
  let instanceA: PostgresQueue
  let instanceB: PostgresQueue

  beforeAll(async () => {
    database = await createTestDatabase('kitqueue')
    pools = [(await openPostgres(database.url)).pool, (await openPostgres(database.url)).pool]
  })
  afterAll(async () => {
    for (const pool of pools) await pool.end()
    await database?.drop()
  })
  beforeEach(async () => {
    await pools[0]!.query('TRUNCATE events, deliveries, ordering_marks, syncs RESTART IDENTITY')
    instanceA = new PostgresQueue(pools[0]!)
    instanceB = new PostgresQueue(pools[1]!)
  })

  const claimBy = (queue: PostgresQueue, owner: string, limit = 10) =>
    queue.claim({ owner, limit, leaseMs: LEASE_MS, now: Date.now(), exclude: [] })

  /** Instance A claims; while its transaction waits at COMMIT, instance B claims too. */
  async function claimTogether(limitA: number): Promise<{ byA: QueuedDelivery[]; byB: QueuedDelivery[] }> {
    const hold = holdNextCommit(pools[0]!)
    const claiming = claimBy(instanceA, 'instance_a', limitA)
    let byB: QueuedDelivery[]
    try {
      await hold.reached
      byB = await claimBy(instanceB, 'instance_b')
    } finally {
      hold.release()
    }
    return { byA: await claiming, byB }
  }

  it("keeps a member's next delivery from another instance while their earlier one is being claimed", async () => {
    const first = event({ memberId: 'm_race' })
    const second = event({ memberId: 'm_race' })
    await instanceA.enqueue(first)
    await instanceA.enqueue(second)
    const { byA, byB } = await claimTogether(10)
    expect(ids(byA)).toEqual([first.eventId])
    expect(byB).toEqual([])
    expect(await claimBy(instanceB, 'instance_b')).toEqual([])
  })

  it("keeps a member's snapshot from another instance while their live event is being claimed", async () => {
    // Both are claimable at once (a live event does not wait for an earlier snapshot); the first
    // instance takes only the live event, so the snapshot is not even row-locked by it.
    const snapshot = event({ memberId: 'm_race', eventType: 'member.snapshot', eventTime: Date.now() })
    const live = event({ memberId: 'm_race', eventTime: Date.now() + 1 })
    await instanceA.enqueue(snapshot)
    await instanceA.enqueue(live)
    const { byA, byB } = await claimTogether(1)
    expect(ids(byA)).toEqual([live.eventId])
    expect(byB).toEqual([])
    expect(await claimBy(instanceB, 'instance_b')).toEqual([])
    await instanceA.settle(byA[0]!.seq, 'instance_a', succeeded)
    expect(ids(await claimBy(instanceB, 'instance_b'))).toEqual([snapshot.eventId])
  })

  // Many members (more than both instances claim at once), then few members with more events each:
  // with few, the instances keep reaching for the same members' snapshots and live events together.
  it.each([
    { members: 60, perMember: 5 },
    { members: 8, perMember: 10 },
  ])(
    "never has two deliveries of one member in flight, settles each once and keeps each member's order ($members members × $perMember)",
    async ({ members: MEMBERS, perMember: PER_MEMBER }) => {
      const base = Date.now()
      // Half the members start with a snapshot: their live events may overtake it (by design), so
      // at moments both a snapshot and a live event of one member are claimable.
      const events: NewDelivery[] = []
      for (let i = 0; i < PER_MEMBER; i++) {
        for (let m = 0; m < MEMBERS; m++) {
          const snapshot = i === 0 && m % 2 === 1
          events.push(
            event({
              memberId: `m_busy_${m}`,
              eventType: snapshot ? 'member.snapshot' : 'user.updated',
              eventTime: base + i,
              payload: String(i),
            }),
          )
        }
      }
      const accepted = await Promise.all(events.map((e, i) => (i % 2 ? instanceA : instanceB).enqueue(e)))
      expect(accepted.every((r) => r.accepted)).toBe(true)

      const inFlight = new Map<string, number>()
      const settledTimes = new Map<number, number>()
      const orderOf = new Map<string, number[]>()
      const violations: string[] = []
      let settledCount = 0

      async function work(queue: PostgresQueue, owner: string) {
        for (let round = 0; settledCount < events.length; round++) {
          if (round > 5000) throw new Error('the queue stopped handing out work')
          const claimed = await queue.claim({ owner, limit: 10, leaseMs: 60_000, now: Date.now(), exclude: [] })
          for (const d of claimed) {
            const busy = inFlight.get(d.memberId)
            if (busy !== undefined) violations.push(`${d.memberId}: ${d.seq} claimed by ${owner} while ${busy} in flight`)
            if (settledTimes.has(d.seq)) violations.push(`${d.seq} claimed again after it was settled`)
            inFlight.set(d.memberId, d.seq)
            orderOf.set(d.memberId, [...(orderOf.get(d.memberId) ?? []), Number(d.payload)])
          }
          if (claimed.length === 0) await new Promise((resolve) => setTimeout(resolve, 1))
          await Promise.all(
            claimed.map(async (d) => {
              // The work itself takes a moment, as a call to Kit does.
              await new Promise((resolve) => setTimeout(resolve, Math.random() * 3))
              // Out of flight as seen here before the settle commits: a claim of this member's next
              // delivery seen before this line would be a real overlap.
              inFlight.delete(d.memberId)
              if (await queue.settle(d.seq, owner, succeeded)) {
                settledTimes.set(d.seq, (settledTimes.get(d.seq) ?? 0) + 1)
                settledCount += 1
              } else {
                violations.push(`${d.seq}: lost its lease`)
              }
            }),
          )
        }
      }
      await Promise.all([work(instanceA, 'instance_a'), work(instanceB, 'instance_b')])

      expect(violations).toEqual([])
      expect(settledTimes.size).toBe(events.length)
      expect([...settledTimes.values()].every((n) => n === 1)).toBe(true)
      const inEventOrder = Array.from({ length: PER_MEMBER }, (_, i) => i)
      expect(orderOf.size).toBe(MEMBERS)
      for (const [member, order] of orderOf) {
        const hasSnapshot = Number(member.split('_').pop()) % 2 === 1
        if (!hasSnapshot) {
          expect(order, member).toEqual(inEventOrder)
        } else {
          // Live events in order; the snapshot (0) anywhere, as nothing came before it.
          expect(
            order.filter((i) => i !== 0),
            member,
          ).toEqual(inEventOrder.slice(1))
        }
      }
      expect(await instanceA.depth()).toEqual({ pending: 0, retrying: 0, held: 0 })
    },
  )

  it('accepts each event id once when two instances receive the same events at once', async () => {
    const events = Array.from({ length: 200 }, () => event())
    const shuffled = (list: NewDelivery[]) =>
      list
        .map((e) => ({ e, k: Math.random() }))
        .sort((a, b) => a.k - b.k)
        .map(({ e }) => e)
    // Each instance receives them in its own order, a few at a time, so that many of its
    // transactions overlap with the other's on the same ids.
    async function receive(queue: PostgresQueue) {
      const order = shuffled(events)
      const answers: Promise<{ e: NewDelivery; r: EnqueueResult }>[] = []
      for (let i = 0; i < order.length; i += 20) {
        answers.push(...order.slice(i, i + 20).map(async (e) => ({ e, r: await queue.enqueue(e) })))
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      return Promise.all(answers)
    }
    const [fromA, fromB] = await Promise.all([receive(instanceA), receive(instanceB)])
    const acceptedTimes = new Map<string, number>()
    for (const { e, r } of [...fromA, ...fromB]) if (r.accepted) acceptedTimes.set(e.eventId, (acceptedTimes.get(e.eventId) ?? 0) + 1)
    expect(acceptedTimes.size).toBe(200)
    expect([...acceptedTimes.values()].every((n) => n === 1)).toBe(true)
    const { rows } = await pools[0]!.query<{ events: number; deliveries: number }>(
      'SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM deliveries)::int AS deliveries',
    )
    expect(rows[0]).toEqual({ events: 200, deliveries: 200 })
  })

  it("lets another instance claim a delivery whose lease expired, and refuses the first owner's outcome", async () => {
    await instanceA.enqueue(event())
    const now = Date.now()
    const [mine] = await instanceA.claim({ owner: 'instance_a', limit: 10, leaseMs: 1000, now, exclude: [] })
    expect(await instanceB.claim({ owner: 'instance_b', limit: 10, leaseMs: LEASE_MS, now: now + 500, exclude: [] })).toEqual([])
    const [theirs] = await instanceB.claim({ owner: 'instance_b', limit: 10, leaseMs: LEASE_MS, now: now + 1001, exclude: [] })
    expect(theirs?.seq).toBe(mine?.seq)
    expect(await instanceA.settle(mine!.seq, 'instance_a', succeeded)).toBe(false)
    expect(await instanceB.settle(theirs!.seq, 'instance_b', succeeded)).toBe(true)
  })

  it("gives back nothing at start: another instance's live leases stay its own", async () => {
    await instanceA.enqueue(event())
    const [mine] = await instanceA.claim({ owner: 'instance_a', limit: 10, leaseMs: LEASE_MS, now: Date.now(), exclude: [] })
    expect(mine).toBeDefined()
    expect(await instanceB.recover()).toBe(0)
    expect(await instanceB.claim({ owner: 'instance_b', limit: 10, leaseMs: LEASE_MS, now: Date.now(), exclude: [] })).toEqual([])
    expect(await instanceA.settle(mine!.seq, 'instance_a', succeeded)).toBe(true)
  })
})
