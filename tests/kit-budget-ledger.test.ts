/**
 * RequestBudget with a ledger, against an in-memory ledger the test answers for: what it asks the
 * ledger, and what a refusal, an error or a 429 does to this process's callers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RequestBudget, type Release } from '../server/kit/budget.ts'
import type { BlockPenalty, BudgetLedger, BudgetTicket } from '../server/core/storage.ts'

const KEY = 'cred-a'
const START = 1_000_000

type Answer = { ticket: BudgetTicket } | { until: number }

/** Grants every take unless told to refuse (until a time) or to fail; records every call. */
class FakeLedger implements BudgetLedger {
  takes: { credentialId: string; capacity: number; windowMs: number }[] = []
  doneIds: string[] = []
  blocks: { credentialId: string; penalty: BlockPenalty }[] = []
  forgiven: string[] = []
  /** What the next block answers (default: the first penalty from now, one strike). */
  blockAnswer: { until: number; strikes: number } | null = null
  strikes = 0
  refuseUntil: number | null = null
  takeError: Error | null = null
  writeError: Error | null = null
  #issued = 0

  take(credentialId: string, capacity: number, windowMs: number): Promise<Answer> {
    this.takes.push({ credentialId, capacity, windowMs })
    if (this.takeError) return Promise.reject(this.takeError)
    if (this.refuseUntil !== null && Date.now() < this.refuseUntil) return Promise.resolve({ until: this.refuseUntil })
    this.#issued += 1
    return Promise.resolve({ ticket: { id: `t${this.#issued}` }, strikes: this.strikes })
  }

  done(ticket: BudgetTicket): Promise<void> {
    if (this.writeError) return Promise.reject(this.writeError)
    this.doneIds.push(ticket.id)
    return Promise.resolve()
  }

  block(credentialId: string, penalty: BlockPenalty): Promise<{ until: number; strikes: number }> {
    if (this.writeError) return Promise.reject(this.writeError)
    this.blocks.push({ credentialId, penalty })
    return Promise.resolve(this.blockAnswer ?? { until: Date.now() + penalty.firstMs, strikes: 1 })
  }

  forgive(credentialId: string): Promise<void> {
    if (this.writeError) return Promise.reject(this.writeError)
    this.forgiven.push(credentialId)
    return Promise.resolve()
  }
}

function setup(options: { limit?: number; interactiveReserve?: number; onLedgerError?: (error: unknown) => void } = {}) {
  const fake = new FakeLedger()
  const budget = new RequestBudget({
    limit: options.limit ?? 5,
    windowMs: 1000,
    interactiveReserve: options.interactiveReserve ?? 1,
    ledger: fake,
    ...(options.onLedgerError ? { onLedgerError: options.onLedgerError } : {}),
  })
  return { fake, budget }
}

function track(promise: Promise<Release>) {
  const seen: { release: Release | null; error: unknown } = { release: null, error: null }
  promise.then(
    (release) => {
      seen.release = release
    },
    (error: unknown) => {
      seen.error = error
    },
  )
  return seen
}

beforeEach(() => {
  vi.useFakeTimers({ now: START })
})

afterEach(() => {
  vi.useRealTimers()
})

describe('RequestBudget with a ledger', () => {
  it('asks the ledger for every request, with the capacity of its priority, and marks the ticket done on release', async () => {
    const { fake, budget } = setup({ limit: 5, interactiveReserve: 1 })
    const interactive = await budget.acquire(KEY, 'interactive')
    const background = await budget.tryAcquire(KEY, 'background')
    expect(fake.takes).toEqual([
      { credentialId: KEY, capacity: 5, windowMs: 1000 },
      { credentialId: KEY, capacity: 4, windowMs: 1000 },
    ])
    expect(fake.doneIds).toEqual([])
    interactive()
    if ('release' in background) background.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(fake.doneIds).toEqual(['t1', 't2'])
  })

  it('does not ask the ledger when the local window already refuses', async () => {
    const { fake, budget } = setup({ limit: 2, interactiveReserve: 1 })
    const first = await budget.tryAcquire(KEY, 'background')
    expect('release' in first).toBe(true)
    expect(await budget.tryAcquire(KEY, 'background')).toEqual({ until: START + 1000 })
    expect(fake.takes).toHaveLength(1)
  })

  it('gives a background caller the ledger refusal and treats the credential as spent until then', async () => {
    const { fake, budget } = setup()
    fake.refuseUntil = START + 700
    expect(await budget.tryAcquire(KEY, 'background')).toEqual({ until: START + 700 })
    expect(budget.usage(KEY)).toMatchObject({ inFlight: 0, inWindow: 0 })
    expect(budget.delayFor(KEY, 'background')).toBe(700)

    await vi.advanceTimersByTimeAsync(300)
    expect(await budget.tryAcquire(KEY, 'background')).toEqual({ until: START + 700 })
    expect(fake.takes).toHaveLength(1)

    await vi.advanceTimersByTimeAsync(400)
    const slot = await budget.tryAcquire(KEY, 'background')
    expect('release' in slot).toBe(true)
    expect(fake.takes).toHaveLength(2)
  })

  it('lets interactive calls still ask after a background refusal, but an interactive refusal holds both', async () => {
    const { fake, budget } = setup()
    fake.refuseUntil = START + 500
    await budget.tryAcquire(KEY, 'background')
    expect(budget.delayFor(KEY, 'interactive')).toBe(0)

    expect(await budget.tryAcquire(KEY, 'interactive')).toEqual({ until: START + 500 })
    expect(budget.delayFor(KEY, 'interactive')).toBe(500)
    expect(budget.delayFor(KEY, 'background')).toBe(500)
    expect(fake.takes.map((t) => t.capacity)).toEqual([4, 5])
  })

  it('makes a waiting caller wait out a refusal and ask again, in arrival order', async () => {
    const { fake, budget } = setup()
    fake.refuseUntil = START + 800
    const order: string[] = []
    const wait = (name: string) =>
      budget.acquire(KEY, 'interactive').then((release) => {
        order.push(name)
        release()
      })
    const waits = [wait('i1'), wait('i2'), wait('i3')]
    await vi.advanceTimersByTimeAsync(0)
    expect(order).toEqual([])
    expect(budget.usage(KEY)).toMatchObject({ waiting: 3, inFlight: 0 })
    const askedWhileRefused = fake.takes.length

    await vi.advanceTimersByTimeAsync(799)
    expect(fake.takes).toHaveLength(askedWhileRefused)
    expect(order).toEqual([])

    await vi.advanceTimersByTimeAsync(1)
    await Promise.all(waits)
    expect(order).toEqual(['i1', 'i2', 'i3'])
  })

  it('rejects acquire and tryAcquire with the ledger error, grants nothing and gives the local slot back', async () => {
    const { fake, budget } = setup()
    const down = new Error('connect ECONNREFUSED 127.0.0.1:5432')
    fake.takeError = down
    await expect(budget.tryAcquire(KEY, 'background')).rejects.toBe(down)
    await expect(budget.acquire(KEY, 'interactive')).rejects.toBe(down)
    expect(budget.usage(KEY)).toEqual({ inWindow: 0, inFlight: 0, waiting: 0, blockedUntil: null, strikes: 0 })

    fake.takeError = null
    const slot = await budget.tryAcquire(KEY, 'background')
    expect('release' in slot).toBe(true)
  })

  it('records a 429 in the ledger with the penalty, and settles the promise once it is recorded', async () => {
    const { fake, budget } = setup()
    await vi.advanceTimersByTimeAsync(250)
    await budget.penalize(KEY)
    expect(fake.blocks).toEqual([{ credentialId: KEY, penalty: { firstMs: 1000, maxMs: 8000 } }])
    expect(budget.usage(KEY).blockedUntil).toBe(START + 1250)
  })

  it("takes the ledger's block and strikes for its own, and asks the ledger to forget them once Kit answers after the block", async () => {
    const { fake, budget } = setup()
    // Another instance had two 429s in a row: its strikes come with the next ticket.
    fake.strikes = 2
    const slot = await budget.tryAcquire(KEY, 'background')
    if ('release' in slot) slot.release()
    expect(budget.usage(KEY).strikes).toBe(2)
    fake.blockAnswer = { until: START + 4000, strikes: 3 }
    await budget.penalize(KEY)
    expect(budget.usage(KEY)).toMatchObject({ blockedUntil: START + 4000, strikes: 3 })
    // An answer to a request sent before the block changes nothing.
    budget.answered(KEY)
    expect(fake.forgiven).toEqual([])
    await vi.advanceTimersByTimeAsync(4000)
    budget.answered(KEY)
    expect(fake.forgiven).toEqual([KEY])
    expect(budget.usage(KEY).strikes).toBe(0)
  })

  it('reports a failed block or done to onLedgerError instead of rejecting', async () => {
    const errors: unknown[] = []
    const { fake, budget } = setup({ onLedgerError: (error) => errors.push(error) })
    const release = await budget.acquire(KEY, 'interactive')
    const failure = new Error('terminating connection due to administrator command')
    fake.writeError = failure
    release()
    await expect(budget.penalize(KEY)).resolves.toBeUndefined()
    await vi.advanceTimersByTimeAsync(0)
    expect(errors).toEqual([failure, failure])
    expect(budget.usage(KEY).blockedUntil).toBe(START + 1000)
  })

  it('rejects a caller that gave up while the ledger was asked, and gives its ticket back', async () => {
    const fake = new FakeLedger()
    let answer: (value: Answer) => void = () => {}
    const ledger: BudgetLedger = {
      take: (...a) => {
        void fake.take(...a)
        return new Promise<Answer>((resolve) => {
          answer = resolve
        })
      },
      done: (ticket) => fake.done(ticket),
      block: (...a) => fake.block(...a),
      forgive: (credentialId) => fake.forgive(credentialId),
    }
    const budget = new RequestBudget({ limit: 5, windowMs: 1000, ledger })
    const controller = new AbortController()
    const waiter = track(budget.acquire(KEY, 'interactive', controller.signal))
    await vi.advanceTimersByTimeAsync(0)
    expect(fake.takes).toHaveLength(1)
    const reason = new Error('caller gave up')
    controller.abort(reason)
    answer({ ticket: { id: 'late' } })
    await vi.advanceTimersByTimeAsync(0)
    expect(waiter.error).toBe(reason)
    expect(waiter.release).toBeNull()
    expect(fake.doneIds).toEqual(['late'])
    expect(budget.usage(KEY)).toMatchObject({ inFlight: 0, inWindow: 1 })
  })

  it('leaves no timer behind once a refusal has passed and nobody waits', async () => {
    const { fake, budget } = setup()
    fake.refuseUntil = START + 300
    const waiter = track(budget.acquire(KEY, 'background'))
    await vi.advanceTimersByTimeAsync(0)
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(300)
    expect(waiter.release).not.toBeNull()
    waiter.release?.()
    await vi.advanceTimersByTimeAsync(1000)
    expect(vi.getTimerCount()).toBe(0)
  })
})
