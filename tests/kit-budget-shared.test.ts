/**
 * Kit's request budget held for the sum of several instances: three RequestBudgets, each with its
 * own pool and PostgresBudgetLedger on one database, as three processes would be. Each Kit request is
 * recorded from when it was sent to when its answer came; Kit counts it somewhere in between.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres } from '../server/db/postgres.ts'
import { BudgetSpentError, RequestBudget, type Priority, type Release } from '../server/kit/budget.ts'
import { KitClientFactory } from '../server/kit/client.ts'
import { PostgresBudgetLedger } from '../server/storage/postgres/ledger.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'
import { startKitStandin } from './kit-standin/server.ts'

const pgUp = await postgresAvailable()

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

interface Sent {
  instance: number
  priority: Priority
  sentAt: number
  answeredAt: number
}

/** The most requests Kit could have counted in one window: intervals [sent, answered + window) overlapping at one instant. */
function mostInOneWindow(sent: Sent[], windowMs: number): number {
  let most = 0
  for (const { sentAt: instant } of sent) {
    const overlapping = sent.filter((s) => s.sentAt <= instant && instant < s.answeredAt + windowMs).length
    most = Math.max(most, overlapping)
  }
  return most
}

/** A Kit call that takes a little while, recorded. */
async function send(release: Release, log: Sent[], instance: number, priority: Priority): Promise<void> {
  const sentAt = Date.now()
  await sleep(Math.random() * 30)
  log.push({ instance, priority, sentAt, answeredAt: Date.now() })
  release()
}

describe.skipIf(!pgUp)("Kit's budget shared by instances through PostgreSQL", () => {
  let database: TestDatabase
  const pools: pg.Pool[] = []

  beforeAll(async () => {
    database = await createTestDatabase()
    for (let i = 0; i < 4; i += 1) pools.push((await openPostgres(database.url, { poolSize: 5 })).pool)
  })

  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()))
    await database?.drop()
  })

  /** Three instances (and a spare pool for a fourth) with one budget configuration. */
  function instances(options: { limit: number; windowMs: number; interactiveReserve?: number }, staleMs = 5000) {
    return pools.slice(0, 3).map((pool) => new RequestBudget({ ...options, ledger: new PostgresBudgetLedger(pool, { staleMs }) }))
  }

  it('never lets the three together send more than the limit in a window, and still uses nearly all of it', async () => {
    const limit = 20
    const windowMs = 1500
    const credential = 'cred_shared_load'
    const budgets = instances({ limit, windowMs })
    const sent: Sent[] = []
    const started = Date.now()
    const stopAt = started + windowMs * 3.5
    const stop = new AbortController()
    const stopTimer = setTimeout(() => stop.abort(new Error('run over')), stopAt - started)

    const background = async (instance: number, budget: RequestBudget): Promise<void> => {
      while (Date.now() < stopAt) {
        const slot = await budget.tryAcquire(credential, 'background')
        if ('release' in slot) await send(slot.release, sent, instance, 'background')
        else await sleep(Math.min(slot.until, stopAt) - Date.now())
      }
    }
    const interactive = async (instance: number, budget: RequestBudget): Promise<void> => {
      while (Date.now() < stopAt) {
        const release = await budget.acquire(credential, 'interactive', stop.signal).catch(() => null)
        if (!release) return
        await send(release, sent, instance, 'interactive')
        await sleep(Math.random() * 100)
      }
    }
    await Promise.all(
      budgets.flatMap((budget, instance) => [
        ...Array.from({ length: 4 }, () => background(instance, budget)),
        interactive(instance, budget),
        interactive(instance, budget),
      ]),
    )
    clearTimeout(stopTimer)

    expect(mostInOneWindow(sent, windowMs)).toBeLessThanOrEqual(limit)
    // Every instance sent, and the panel's calls got through beside the backlog.
    for (const instance of [0, 1, 2]) expect(sent.some((s) => s.instance === instance)).toBe(true)
    expect(sent.some((s) => s.priority === 'interactive')).toBe(true)
    // Not starved: the two windows after the first are nearly full (each slot frees a window after its answer).
    const firstSent = Math.min(...sent.map((s) => s.sentAt))
    const afterFirst = sent.filter((s) => s.sentAt >= firstSent + windowMs && s.sentAt < firstSent + 3 * windowMs)
    expect(afterFirst.length).toBeGreaterThanOrEqual(Math.ceil(0.8 * 2 * limit))
  })

  it('makes the other instances refuse after a 429 on one, until the block ends', async () => {
    const windowMs = 1200
    const credential = 'cred_shared_429'
    const [first, second, third] = instances({ limit: 10, windowMs })
    if (!first || !second || !third) throw new Error('three instances expected')
    const penalizedAt = Date.now()
    await first.penalize(credential)

    for (const other of [second, third]) {
      const slot = await other.tryAcquire(credential, 'background')
      expect(slot).toEqual({ until: expect.any(Number) })
      if ('until' in slot) expect(slot.until).toBeGreaterThanOrEqual(penalizedAt + windowMs - 1)
    }
    await sleep(windowMs / 2)
    expect('until' in (await second.tryAcquire(credential, 'interactive'))).toBe(true)

    await sleep(penalizedAt + windowMs + 50 - Date.now())
    for (const other of [second, third]) {
      const slot = await other.tryAcquire(credential, 'background')
      expect('release' in slot).toBe(true)
      if ('release' in slot) slot.release()
    }
  })

  it('grows the block for 429s in a row, whichever instance Kit refused, up to the bound, and starts over once Kit answers', async () => {
    const windowMs = 300
    const kit = await startKitStandin({ apiKeys: ['kit_shared_429_growth'] })
    try {
      // Two instances, each with its budget on its own pool and its own Kit client.
      const [a, b] = pools.slice(0, 2).map((pool) => {
        const budget = new RequestBudget({
          limit: 10,
          windowMs,
          maxBlockMs: 4 * windowMs,
          ledger: new PostgresBudgetLedger(pool, { staleMs: 5000 }),
        })
        const factory = new KitClientFactory({ baseUrl: kit.url, budget, credentialKey: Buffer.alloc(32, 7) })
        return { budget, kit: factory.forKey('kit_shared_429_growth', { priority: 'background', waitForBudget: false, retryOn429: false }) }
      })
      if (!a || !b) throw new Error('two instances expected')
      const credential = a.kit.credentialId
      const refused = { status: 429, body: 'Retry later', contentType: 'text/plain; charset=utf-8' }

      /** Kit refuses one call of `by`: how long the block it set lasts, within the clock's reach. */
      const refusedBy = async (by: { budget: RequestBudget; kit: typeof a.kit }) => {
        kit.injectNext(1, refused)
        const before = Date.now()
        const error = await by.kit.listTags().then(
          () => null,
          (err: unknown) => err,
        )
        const after = Date.now()
        expect(error).toMatchObject({ kind: 'rate_limited' })
        const until = by.budget.usage(credential).blockedUntil ?? 0
        return { until, longest: until - before, shortest: until - after }
      }
      /** The other instance is refused too, nothing sent, until about the same time; then the block ends. */
      const honouredBy = async (other: { kit: typeof a.kit }, until: number, blockMs: number) => {
        const sent = kit.requests.length
        const error = await other.kit.listTags().then(
          () => null,
          (err: unknown) => err,
        )
        expect(error).toBeInstanceOf(BudgetSpentError)
        // The instances turn the database's time into their own clocks, each on its own call.
        const otherUntil = (error as BudgetSpentError).until
        expect(otherUntil).toBeGreaterThan(until - blockMs / 2)
        expect(kit.requests.length).toBe(sent)
        await sleep(Math.max(until, otherUntil) + 30 - Date.now())
      }

      const lengths: number[] = []
      for (const [by, other] of [
        [a, b],
        [b, a],
        [a, b],
        [b, a],
      ] as const) {
        const block = await refusedBy(by)
        // The block is one of the lengths below: it lies between what the clock allows.
        const length = [windowMs, 2 * windowMs, 4 * windowMs].find((ms) => block.shortest <= ms && ms <= block.longest) ?? block.longest
        lengths.push(length)
        await honouredBy(other, block.until, length)
      }
      expect(lengths).toEqual([windowMs, 2 * windowMs, 4 * windowMs, 4 * windowMs])

      // Kit answers a call sent after the block: the next 429 blocks for one window again.
      await b.kit.listTags()
      const fresh = await refusedBy(a)
      expect(fresh.shortest).toBeLessThanOrEqual(windowMs)
      expect(a.budget.usage(credential).strikes).toBe(1)
    } finally {
      await kit.close()
    }
  })

  it('frees the slot of an instance that died with a request in flight after its stale limit and a window', async () => {
    const windowMs = 300
    const staleMs = 1000
    const credential = 'cred_shared_dead'
    const spare = pools[3]
    if (!spare) throw new Error('a fourth pool expected')
    const dead = new RequestBudget({ limit: 1, windowMs, interactiveReserve: 0, ledger: new PostgresBudgetLedger(spare, { staleMs }) })
    const [survivor] = instances({ limit: 1, windowMs, interactiveReserve: 0 })
    if (!survivor) throw new Error('an instance expected')
    const neverDone = await dead.tryAcquire(credential, 'background')
    // The ticket was taken no later than now (a first connection of a pool can take a while).
    const takenAt = Date.now()
    expect('release' in neverDone).toBe(true)

    expect('until' in (await survivor.tryAcquire(credential, 'background'))).toBe(true)
    // A request answered at once would have freed by now; one never answered still holds its slot.
    await sleep(windowMs * 2)
    expect('until' in (await survivor.tryAcquire(credential, 'background'))).toBe(true)

    await sleep(takenAt + staleMs + windowMs + 50 - Date.now())
    const slot = await survivor.tryAcquire(credential, 'background')
    expect('release' in slot).toBe(true)
    if ('release' in slot) slot.release()
  })

  it('keeps two credentials in windows of their own', async () => {
    const [first, second] = instances({ limit: 3, windowMs: 2000, interactiveReserve: 0 })
    if (!first || !second) throw new Error('two instances expected')
    const releases: Release[] = []
    for (let i = 0; i < 3; i += 1) {
      const slot = await first.tryAcquire('cred_shared_x', 'background')
      if ('release' in slot) releases.push(slot.release)
    }
    expect(releases).toHaveLength(3)
    expect('until' in (await second.tryAcquire('cred_shared_x', 'background'))).toBe(true)
    for (let i = 0; i < 3; i += 1) {
      const slot = await second.tryAcquire('cred_shared_y', 'background')
      expect('release' in slot).toBe(true)
      if ('release' in slot) releases.push(slot.release)
    }
    for (const release of releases) release()
  })
})
