import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BudgetBusyError, RequestBudget, type Priority, type Release } from '../server/kit/budget.ts'

const KEY = 'cred-a'

interface Tracked {
  promise: Promise<Release>
  settled: () => boolean
  release: () => void
}

function track(budget: RequestBudget, priority: Priority, signal?: AbortSignal, key = KEY): Tracked {
  let done = false
  let release: Release | null = null
  const promise = budget.acquire(key, priority, signal)
  promise.then(
    (r) => {
      done = true
      release = r
    },
    () => {
      done = true
    },
  )
  return {
    promise,
    settled: () => done,
    release: () => {
      if (!release) throw new Error('not granted')
      release()
    },
  }
}

async function acquireAndRelease(budget: RequestBudget, count: number, priority: Priority = 'interactive'): Promise<void> {
  for (let i = 0; i < count; i += 1) (await budget.acquire(KEY, priority))()
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 })
})

afterEach(() => {
  vi.useRealTimers()
})

describe('RequestBudget', () => {
  it('grants up to the limit at once and makes the next caller wait for the window', async () => {
    const budget = new RequestBudget({ limit: 3, windowMs: 1000 })
    await acquireAndRelease(budget, 3)
    const next = track(budget, 'interactive')
    await vi.advanceTimersByTimeAsync(999)
    expect(next.settled()).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(next.settled()).toBe(true)
    next.release()
  })

  it('keeps a slot until a full window after the request completed', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 1000 })
    const release = await budget.acquire(KEY, 'interactive')
    await vi.advanceTimersByTimeAsync(400)
    release()
    const next = track(budget, 'interactive')
    await vi.advanceTimersByTimeAsync(999)
    expect(next.settled()).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(next.settled()).toBe(true)
    next.release()
  })

  it('never lets more than the limit overlap any window, whatever the request durations', async () => {
    const limit = 5
    const windowMs = 1000
    const budget = new RequestBudget({ limit, windowMs })
    const spans: { start: number; end: number }[] = []
    const run = async (priority: Priority): Promise<void> => {
      const release = await budget.acquire(KEY, priority)
      const start = Date.now()
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 700)))
      spans.push({ start, end: Date.now() })
      release()
    }
    const all = Promise.all(Array.from({ length: 40 }, (_, i) => run(i % 3 === 0 ? 'interactive' : 'background')))
    await vi.advanceTimersByTimeAsync(60_000)
    await all
    expect(spans).toHaveLength(40)
    for (const { start: t } of spans) {
      const overlapping = spans.filter((s) => s.start <= t + windowMs - 1 && s.end >= t)
      expect(overlapping.length).toBeLessThanOrEqual(limit)
    }
  })

  it('serves waiting interactive callers before earlier background ones', async () => {
    const budget = new RequestBudget({ limit: 2, windowMs: 1000, interactiveReserve: 0 })
    await acquireAndRelease(budget, 2)
    const order: string[] = []
    const wait = (name: string, priority: Priority): Promise<void> =>
      budget.acquire(KEY, priority).then((release) => {
        order.push(name)
        release()
      })
    const waits = [wait('b1', 'background'), wait('b2', 'background'), wait('i1', 'interactive'), wait('i2', 'interactive')]
    await vi.advanceTimersByTimeAsync(3000)
    await Promise.all(waits)
    expect(order).toEqual(['i1', 'i2', 'b1', 'b2'])
  })

  it('keeps the default reserve of max(1, 5%) for interactive callers', async () => {
    const budget = new RequestBudget({ limit: 10, windowMs: 1000 })
    expect(budget.interactiveReserve).toBe(1)
    await acquireAndRelease(budget, 9, 'background')
    const background = track(budget, 'background')
    const interactive = track(budget, 'interactive')
    await vi.advanceTimersByTimeAsync(0)
    expect(interactive.settled()).toBe(true)
    expect(background.settled()).toBe(false)
    interactive.release()
    await vi.advanceTimersByTimeAsync(1000)
    expect(background.settled()).toBe(true)
    background.release()
    expect(new RequestBudget({ limit: 120, windowMs: 60_000 }).interactiveReserve).toBe(6)
  })

  it('honours an explicit reserve and always leaves background at least one slot', async () => {
    const budget = new RequestBudget({ limit: 4, windowMs: 1000, interactiveReserve: 2 })
    await acquireAndRelease(budget, 2, 'background')
    expect(budget.delayFor(KEY, 'background')).toBeGreaterThan(0)
    expect(budget.delayFor(KEY, 'interactive')).toBe(0)
    expect(new RequestBudget({ limit: 1, windowMs: 1000 }).interactiveReserve).toBe(0)
    expect(new RequestBudget({ limit: 3, windowMs: 1000, interactiveReserve: 10 }).interactiveReserve).toBe(2)
  })

  it('blocks every request for a full window after penalize', async () => {
    const budget = new RequestBudget({ limit: 5, windowMs: 1000 })
    void budget.penalize(KEY)
    expect(budget.usage(KEY).blockedUntil).toBe(Date.now() + 1000)
    expect(budget.delayFor(KEY, 'interactive')).toBe(1000)
    const next = track(budget, 'interactive')
    await vi.advanceTimersByTimeAsync(999)
    expect(next.settled()).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(next.settled()).toBe(true)
    next.release()
    expect(budget.usage(KEY).blockedUntil).toBeNull()
  })

  it('blocks twice as long for each 429 right after a block ended, up to the bound, and starts over once Kit answers', async () => {
    const budget = new RequestBudget({ limit: 5, windowMs: 1000, maxBlockMs: 5000 })
    const blockFor = async () => {
      const before = Date.now()
      await budget.penalize(KEY)
      return (budget.usage(KEY).blockedUntil ?? before) - before
    }
    expect(await blockFor()).toBe(1000)
    // A 429 for a request sent before the block began: nothing changes.
    await vi.advanceTimersByTimeAsync(400)
    expect(await blockFor()).toBe(600)
    const lengths: number[] = []
    for (let i = 0; i < 4; i += 1) {
      await vi.advanceTimersByTimeAsync(budget.delayFor(KEY, 'interactive'))
      lengths.push(await blockFor())
    }
    expect(lengths).toEqual([2000, 4000, 5000, 5000])
    // An answer while blocked is to a request sent before: the strikes stay.
    budget.answered(KEY)
    expect(budget.usage(KEY).strikes).toBe(5)
    await vi.advanceTimersByTimeAsync(5000)
    budget.answered(KEY)
    expect(budget.usage(KEY).strikes).toBe(0)
    expect(await blockFor()).toBe(1000)
  })

  it('remembers the strikes while nothing else is going on for the credential', async () => {
    const budget = new RequestBudget({ limit: 5, windowMs: 1000 })
    await budget.penalize(KEY)
    await vi.advanceTimersByTimeAsync(60_000)
    await budget.penalize(KEY)
    expect(budget.usage(KEY)).toMatchObject({ strikes: 2, blockedUntil: Date.now() + 2000 })
  })

  it('rejects an aborted waiter with the abort reason and gives its place to the next one', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 1000 })
    await acquireAndRelease(budget, 1)
    const controller = new AbortController()
    const aborted = track(budget, 'interactive', controller.signal)
    const next = track(budget, 'interactive')
    expect(budget.usage(KEY).waiting).toBe(2)
    const reason = new Error('caller gave up')
    controller.abort(reason)
    await expect(aborted.promise).rejects.toBe(reason)
    expect(budget.usage(KEY).waiting).toBe(1)
    await vi.advanceTimersByTimeAsync(1000)
    expect(next.settled()).toBe(true)
    next.release()
  })

  it('rejects at once when the signal is already aborted', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 1000 })
    await expect(budget.acquire(KEY, 'background', AbortSignal.abort(new Error('stop')))).rejects.toThrow('stop')
    expect(budget.usage(KEY)).toEqual({ inWindow: 0, inFlight: 0, waiting: 0, blockedUntil: null, strikes: 0 })
  })

  it('tells how long until a slot of each priority is free', async () => {
    const budget = new RequestBudget({ limit: 3, windowMs: 1000, interactiveReserve: 1 })
    expect(budget.delayFor(KEY, 'background')).toBe(0)
    await acquireAndRelease(budget, 1)
    await vi.advanceTimersByTimeAsync(100)
    await acquireAndRelease(budget, 1)
    expect(budget.delayFor(KEY, 'interactive')).toBe(0)
    expect(budget.delayFor(KEY, 'background')).toBe(900)
    await vi.advanceTimersByTimeAsync(200)
    const inFlight = await budget.acquire(KEY, 'interactive')
    expect(budget.delayFor(KEY, 'interactive')).toBe(700)
    expect(budget.delayFor(KEY, 'background')).toBe(800)
    expect(budget.usage(KEY)).toEqual({ inWindow: 2, inFlight: 1, waiting: 0, blockedUntil: null, strikes: 0 })
    inFlight()
  })

  it('counts in-flight requests and queued callers in the delay', async () => {
    const budget = new RequestBudget({ limit: 2, windowMs: 1000, interactiveReserve: 0 })
    const first = await budget.acquire(KEY, 'interactive')
    const second = await budget.acquire(KEY, 'interactive')
    expect(budget.delayFor(KEY, 'interactive')).toBe(1000)
    first()
    second()
    const queued = track(budget, 'interactive')
    expect(budget.delayFor(KEY, 'interactive')).toBe(1000)
    expect(budget.delayFor(KEY, 'background')).toBe(1000)
    await vi.advanceTimersByTimeAsync(1000)
    expect(queued.settled()).toBe(true)
    queued.release()
  })

  it('keeps credentials independent', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 1000 })
    await acquireAndRelease(budget, 1)
    void budget.penalize(KEY)
    const other = track(budget, 'background', undefined, 'cred-b')
    await vi.advanceTimersByTimeAsync(0)
    expect(other.settled()).toBe(true)
    other.release()
  })

  it('ignores a second call of the same release', async () => {
    const budget = new RequestBudget({ limit: 2, windowMs: 1000 })
    const release = await budget.acquire(KEY, 'interactive')
    release()
    release()
    expect(budget.usage(KEY)).toEqual({ inWindow: 1, inFlight: 0, waiting: 0, blockedUntil: null, strikes: 0 })
  })

  it('leaves no timer behind once nobody waits', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 1000 })
    await acquireAndRelease(budget, 1)
    const controller = new AbortController()
    const waiter = track(budget, 'interactive', controller.signal)
    expect(vi.getTimerCount()).toBe(1)
    controller.abort()
    await expect(waiter.promise).rejects.toBeDefined()
    expect(vi.getTimerCount()).toBe(0)
    const next = track(budget, 'background')
    await vi.advanceTimersByTimeAsync(1000)
    next.release()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('refuses a nonsensical configuration', () => {
    expect(() => new RequestBudget({ limit: 0, windowMs: 1000 })).toThrow(RangeError)
    expect(() => new RequestBudget({ limit: 5, windowMs: 0 })).toThrow(RangeError)
  })
})

describe('RequestBudget waiting cap', () => {
  it('refuses an interactive call at once when the cap of waiting ones is reached, saying when to retry', async () => {
    const budget = new RequestBudget({ limit: 2, windowMs: 1000, maxInteractiveWaiting: 3 })
    await acquireAndRelease(budget, 2)
    const waiting = [0, 1, 2].map(() => track(budget, 'interactive'))
    expect(budget.usage(KEY).waiting).toBe(3)

    const refused = await budget.acquire(KEY, 'interactive').then(
      () => null,
      (e: unknown) => e,
    )
    expect(refused).toBeInstanceOf(BudgetBusyError)
    expect((refused as BudgetBusyError).credentialId).toBe(KEY)
    expect((refused as BudgetBusyError).retryAfterMs).toBe(1000)
    expect(budget.usage(KEY).waiting).toBe(3)

    const background = track(budget, 'background')
    expect(budget.usage(KEY).waiting).toBe(4)
    await vi.advanceTimersByTimeAsync(1000)
    expect(waiting.filter((w) => w.settled())).toHaveLength(2)
    expect(background.settled()).toBe(false)
  })

  it('counts waiting calls per credential', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 1000, maxInteractiveWaiting: 1 })
    await acquireAndRelease(budget, 1)
    track(budget, 'interactive')
    await expect(budget.acquire(KEY, 'interactive')).rejects.toBeInstanceOf(BudgetBusyError)
    const other = track(budget, 'interactive', undefined, 'cred-b')
    await vi.advanceTimersByTimeAsync(0)
    expect(other.settled()).toBe(true)
  })

  it('queues without limit when no cap is given', async () => {
    const budget = new RequestBudget({ limit: 1, windowMs: 1000 })
    await acquireAndRelease(budget, 1)
    for (let i = 0; i < 50; i += 1) track(budget, 'interactive')
    expect(budget.usage(KEY).waiting).toBe(50)
  })
})
