// Over 400 lines: the claim's turns between communities, one case per rule, sharing fake timers and a fake queue.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyBaseLogger } from 'fastify'
import { BudgetSpentError, decideSlot, RequestBudget, slotFreesIn, type BudgetState } from '../../server/kit/budget.ts'
import type { KitApi } from '../../server/kit/client.ts'
import { Consumer } from '../../server/pipeline/consumer.ts'
import {
  claimPlan,
  describeBudget,
  FairShare,
  putBackForBudget,
  putBackForTurn,
  takingTurns,
  TurnOver,
  type Turn,
} from '../../server/pipeline/fairness.ts'
import { reasonWords } from '../../server/core/reasons.ts'
import { takeTurns } from '../../server/core/turns.ts'
import type { DeliveryProcessor } from '../../server/pipeline/processor.ts'
import { DeliveryProgress, resumable } from '../../server/pipeline/progress.ts'
import type { ClaimOptions, DeliveryQueue, Outcome, QueuedDelivery } from '../../server/core/queue.ts'
import { queuedDelivery } from '../helpers/deliveries.ts'

const NOW = 1_000_000

function budgetState(overrides: Partial<BudgetState> = {}): BudgetState {
  return {
    limit: 10,
    windowMs: 1000,
    interactiveReserve: 1,
    completions: [],
    inFlight: 0,
    waitingInteractive: 0,
    waitingBackground: 0,
    blockedUntil: 0,
    ...overrides,
  }
}

/** `n` requests that completed at `at`, `at + 10`, … */
const completedAt = (n: number, at: number) => Array.from({ length: n }, (_, i) => at + i * 10)

describe('the slot decision before each Kit request', () => {
  it('runs at once while the window has room', () => {
    expect(decideSlot(budgetState({ completions: completedAt(5, NOW - 500) }), { priority: 'background', mayWait: false }, NOW)).toEqual({
      action: 'run',
    })
  })

  it('puts a background delivery back until the oldest request leaves the window, instead of waiting', () => {
    const state = budgetState({ completions: completedAt(9, NOW - 800) })
    // 9 of 10 used and 1 kept for the panel: the background caller is out until NOW - 800 + 1000.
    expect(decideSlot(state, { priority: 'background', mayWait: false }, NOW)).toEqual({ action: 'put_back', until: NOW + 200 })
  })

  it('lets an interactive call use the reserve, and makes it wait rather than give up when the window is full', () => {
    const nineUsed = budgetState({ completions: completedAt(9, NOW - 800) })
    expect(decideSlot(nineUsed, { priority: 'interactive', mayWait: true }, NOW)).toEqual({ action: 'run' })
    const full = budgetState({ completions: completedAt(10, NOW - 800) })
    expect(decideSlot(full, { priority: 'interactive', mayWait: true }, NOW)).toEqual({ action: 'wait', ms: 200 })
  })

  it('counts requests in flight and callers already waiting ahead', () => {
    expect(slotFreesIn(budgetState({ inFlight: 9 }), 'background', NOW)).toBe(1000)
    const withWaiters = budgetState({ completions: completedAt(6, NOW - 900), waitingInteractive: 3 })
    expect(slotFreesIn(withWaiters, 'interactive', NOW)).toBe(0)
    expect(slotFreesIn(withWaiters, 'background', NOW)).toBe(100)
  })

  it('ignores requests that already left the window', () => {
    expect(slotFreesIn(budgetState({ completions: completedAt(10, NOW - 2000) }), 'background', NOW)).toBe(0)
  })

  it('puts back until the end of a 429 block even when the window has room', () => {
    const state = budgetState({ blockedUntil: NOW + 5000 })
    expect(decideSlot(state, { priority: 'background', mayWait: false }, NOW)).toEqual({ action: 'put_back', until: NOW + 5000 })
  })

  it('is what the real budget decides: tryAcquire takes a slot or says until when, and never queues', async () => {
    let now = NOW
    const budget = new RequestBudget({ limit: 3, windowMs: 1000, interactiveReserve: 1, now: () => now })
    const first = await budget.tryAcquire('cred', 'background')
    const second = await budget.tryAcquire('cred', 'background')
    expect('release' in first && 'release' in second).toBe(true)
    expect(await budget.tryAcquire('cred', 'background')).toEqual({ until: NOW + 1000 })
    if ('release' in first) first.release()
    now += 100
    if ('release' in second) second.release()
    expect(await budget.tryAcquire('cred', 'background')).toEqual({ until: NOW + 1000 })
    expect(budget.usage('cred')).toMatchObject({ inFlight: 0, waiting: 0, inWindow: 2 })
    now = NOW + 1001
    expect('release' in (await budget.tryAcquire('cred', 'background'))).toBe(true)
  })
})

describe('what the consumer may claim', () => {
  const credentials = new Map([
    ['c_heavy', 'cred_heavy'],
    ['c_heavy_twin', 'cred_heavy'],
    ['c_light', 'cred_light'],
    ['c_spent', 'cred_spent'],
  ])
  const budgetFreesIn = (credentialId: string) => (credentialId === 'cred_spent' ? 700 : 0)

  it('leaves out every community of a credential at its cap, and those whose budget is spent', () => {
    const plan = claimPlan({ credentials, inFlight: new Map([['cred_heavy', 2]]), perCredential: 2, free: 2, budgetFreesIn })
    expect(plan.exclude.sort()).toEqual(['c_heavy', 'c_heavy_twin', 'c_spent'])
    expect(plan.budgetFreesIn).toBe(700)
    expect(plan.limit).toBe(2)
  })

  it('claims no more at once than the busiest claimable credential still has room for', () => {
    const plan = claimPlan({ credentials, inFlight: new Map([['cred_heavy', 1]]), perCredential: 2, free: 3, budgetFreesIn })
    expect(plan.exclude).toEqual(['c_spent'])
    expect(plan.limit).toBe(1)
    expect(claimPlan({ credentials, inFlight: new Map(), perCredential: 2, free: 4, budgetFreesIn }).limit).toBe(2)
    expect(claimPlan({ credentials, inFlight: new Map(), perCredential: 2, free: 1, budgetFreesIn }).limit).toBe(1)
  })
})

describe('communities taking turns at the queue', () => {
  const candidate = (seq: number, communityId: string, memberId = `m_${seq}`) => ({ seq, communityId, memberId })
  const seqs = (picked: { seq: number }[]) => picked.map((c) => c.seq)

  it('serves every community once, oldest work first, before any of them twice', () => {
    const candidates = [
      candidate(1, 'c_busy'),
      candidate(2, 'c_busy'),
      candidate(3, 'c_busy'),
      candidate(9, 'c_other'),
      candidate(12, 'c_quiet'),
    ]
    expect(seqs(takeTurns(candidates, 4))).toEqual([1, 9, 12, 2])
  })

  it('serves communities in the order of their places, however old the other backlog', () => {
    const candidates = [candidate(3, 'c_busy'), candidate(4, 'c_busy'), candidate(50, 'c_quiet')]
    const order = {
      floor: 1000,
      places: new Map([
        ['c_busy', 4000],
        ['c_quiet', 200],
      ]),
    }
    expect(seqs(takeTurns(candidates, 1, order))).toEqual([50])
    // At the floor both; the quiet one has used less.
    expect(
      seqs(
        takeTurns(candidates, 3, {
          floor: 5000,
          places: new Map([
            ['c_busy', 4000],
            ['c_quiet', 200],
          ]),
        }),
      ),
    ).toEqual([50, 3, 4])
    // Equal: the older work first.
    expect(seqs(takeTurns(candidates, 3, { floor: 1000, places: new Map() }))).toEqual([3, 50, 4])
  })

  it("takes at most one delivery of a member, and keeps each community's own order", () => {
    const candidates = [candidate(5, 'c_a', 'm_x'), candidate(2, 'c_a', 'm_x'), candidate(7, 'c_a', 'm_y')]
    expect(seqs(takeTurns(candidates, 3))).toEqual([5, 7])
  })
})

describe("fair shares of the consumer's slots", () => {
  it('puts a community back by the slot time it used, and a quiet one at the front without banking idle time', () => {
    const share = new FairShare(1000)
    const place = (communityId: string) => {
      const { floor, places } = share.order()
      return Math.max(floor, places.get(communityId) ?? floor)
    }
    for (let turn = 0; turn < 5; turn++) {
      for (const busy of ['c_busy_1', 'c_busy_2']) {
        share.claimed(busy)
        share.ran(busy, 1000)
      }
    }
    share.claimed('c_quiet')
    share.ran('c_quiet', 300)
    // Both busy communities used five seconds; the quiet one used little and stands first.
    expect(place('c_quiet')).toBeLessThan(place('c_busy_1'))
    // The busy ones go on for a long while; the quiet one's next event still goes first.
    for (let turn = 0; turn < 20; turn++) {
      const next = place('c_busy_1') <= place('c_busy_2') ? 'c_busy_1' : 'c_busy_2'
      share.claimed(next)
      share.ran(next, 1000)
    }
    expect(place('c_quiet')).toBeLessThanOrEqual(Math.min(place('c_busy_1'), place('c_busy_2')))
    // A claim charges a turn at once: a busy community's second delivery does not slip in first.
    share.claimed('c_busy_1')
    expect(place('c_busy_1')).toBeGreaterThan(place('c_quiet'))
    share.ran('c_busy_1', 1000)
    // It does not get twenty seconds of credit: once it has a backlog, it takes turns with them.
    share.claimed('c_quiet')
    share.ran('c_quiet', 1000)
    share.claimed('c_quiet')
    share.ran('c_quiet', 1000)
    expect(place('c_quiet')).toBeGreaterThan(Math.min(place('c_busy_1'), place('c_busy_2')))
  })
})

describe("a delivery's turn in a consumer slot", () => {
  it('lets calls through until the turn is over, then refuses before anything is sent', async () => {
    const sent: string[] = []
    const kit = {
      credentialId: 'cred',
      tagSubscriber: async (tagId: number) => {
        sent.push(`tag ${tagId}`)
      },
    } as unknown as KitApi
    let over = false
    const turn: Turn = { over: () => over }
    const api = takingTurns(kit, turn)
    expect(api.credentialId).toBe('cred')
    await api.tagSubscriber(1, 9)
    over = true
    await expect(api.tagSubscriber(2, 9)).rejects.toBeInstanceOf(TurnOver)
    expect(sent).toEqual(['tag 1'])
  })

  it('is put back pending, due at once and keeping its place, not as a failed attempt', () => {
    expect(putBackForTurn({ receivedAt: 12_345 }, 9)).toEqual({
      status: 'pending',
      reason: 'turn_over',
      kitRequests: 9,
      lastError: reasonWords('turn_over'),
      nextAttemptAt: 12_345,
    })
  })
})

describe('a delivery put back for the budget', () => {
  it('stays pending, keeps its place in line, and says in words when it continues', () => {
    const until = Date.UTC(2026, 0, 5, 10, 42, 4, 300)
    const receivedAt = until - 90_000
    const outcome = putBackForBudget(new BudgetSpentError('cred', until, 120, 60_000), { receivedAt }, 17)
    expect(outcome).toEqual({
      status: 'pending',
      reason: 'kit_budget',
      kitRequests: 17,
      lastError: "Waiting for Kit's rate limit (120 requests a minute); continues at 10:42:05 UTC.",
      nextAttemptAt: receivedAt,
    })
  })

  it('names the budget in plain words', () => {
    expect(describeBudget(20, 2000)).toBe('20 requests every 2 seconds')
    expect(describeBudget(600, 300_000)).toBe('600 requests every 5 minutes')
    expect(describeBudget(1, 1000)).toBe('1 request a second')
  })
})

describe('resuming a delivery', () => {
  function recordingKit() {
    const calls: string[] = []
    let failNext = false
    const record = (name: string) => async () => {
      if (failNext) {
        failNext = false
        throw new Error('no slot')
      }
      calls.push(name)
    }
    const kit = {
      credentialId: 'cred',
      tagSubscriber: (t: number, s: number) => record(`tag ${t} ${s}`)(),
      untagSubscriber: (t: number, s: number) => record(`untag ${t} ${s}`)(),
      addSubscriberToForm: (f: number, s: number) => record(`form ${f} ${s}`)(),
      addSubscriberToSequence: (q: number, s: number) => record(`sequence ${q} ${s}`)(),
      unsubscribe: (s: number) => record(`unsubscribe ${s}`)(),
    } as unknown as KitApi
    return { kit, calls, failOnce: () => (failNext = true) }
  }

  it('does not send again the membership calls the delivery already made', async () => {
    const { kit, calls, failOnce } = recordingKit()
    const progress = new DeliveryProgress()
    const first = progress.of('dlv_1')
    const run = async (api: KitApi) => {
      await api.untagSubscriber(1, 9)
      await api.tagSubscriber(2, 9)
      await api.tagSubscriber(3, 9)
      await api.addSubscriberToSequence(4, 9)
    }
    const attempt = resumable(kit, first)
    await attempt.untagSubscriber(1, 9)
    await attempt.tagSubscriber(2, 9)
    failOnce()
    await expect(attempt.tagSubscriber(3, 9)).rejects.toThrow('no slot')
    progress.keep('dlv_1', first)

    const again = progress.of('dlv_1')
    progress.finish('dlv_1')
    await run(resumable(kit, again))
    expect(calls).toEqual(['untag 1 9', 'tag 2 9', 'tag 3 9', 'sequence 4 9'])
    expect(progress.size).toBe(0)
    expect(progress.of('dlv_1').size).toBe(0)
  })
})

/** A claimed sign-up of member `m_<seq>` in `communityId`, for the consumer cases below. */
const delivery = (seq: number, communityId: string): QueuedDelivery =>
  queuedDelivery({ seq, id: `dlv_${seq}`, communityId, memberId: `m_${seq}`, eventTime: 0, receivedAt: 0 })

describe('consumer: at most a few deliveries per credential at once', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('keeps slots free for another community while one has a long backlog', async () => {
    // A queue in memory that honours limit and exclude, oldest first.
    const ready = [...Array.from({ length: 20 }, (_, i) => delivery(i + 1, 'c_heavy')), delivery(100, 'c_light')]
    const queue = {
      claim: (o: ClaimOptions) => {
        const picked = ready.filter((d) => !o.exclude.includes(d.communityId)).slice(0, o.limit)
        for (const d of picked) ready.splice(ready.indexOf(d), 1)
        return picked
      },
      settle: () => true,
      release: () => 0,
      nextDueAt: () => null,
      expediteRetries: () => 0,
    } as unknown as DeliveryQueue
    const running = new Map<string, number>()
    let peakHeavy = 0
    const started: string[] = []
    const processor = {
      process: async (d: QueuedDelivery) => {
        started.push(d.communityId)
        running.set(d.communityId, (running.get(d.communityId) ?? 0) + 1)
        peakHeavy = Math.max(peakHeavy, running.get('c_heavy') ?? 0)
        await new Promise((resolve) => setTimeout(resolve, 1000))
        running.set(d.communityId, (running.get(d.communityId) ?? 1) - 1)
        return { status: 'succeeded' as const, kitRequests: 1, lastError: null }
      },
    } as unknown as DeliveryProcessor
    const consumer = new Consumer({
      queue,
      processor,
      budget: { delayFor: () => 0 } as unknown as RequestBudget,
      credentials: async () =>
        new Map([
          ['c_heavy', 'cred_heavy'],
          ['c_light', 'cred_light'],
        ]),
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } as unknown as FastifyBaseLogger,
      metrics: { eventsProcessed: { inc: () => {} }, deliveryLatency: { observe: () => {} } },
      concurrency: 4,
      idlePollMs: 60_000,
    })
    consumer.start()
    await vi.advanceTimersByTimeAsync(50)
    // The light community's delivery started at once although twenty heavy ones were older.
    expect(started).toContain('c_light')
    expect(consumer.inFlightByCredential().get('cred_heavy')).toBe(2)
    await vi.advanceTimersByTimeAsync(12_000)
    expect(started.filter((c) => c === 'c_heavy')).toHaveLength(20)
    expect(peakHeavy).toBe(2)
    expect(consumer.peakInFlightByCredential().get('cred_heavy')).toBe(2)
    const stopped = consumer.stop(0)
    await vi.advanceTimersByTimeAsync(50)
    await stopped
  })
})

describe("consumer: a delivery's turn", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  /** Two slots, two long deliveries of different communities; `waiting` says whether other work is due. */
  async function run(waiting: boolean) {
    const ready = [delivery(1, 'c_a'), delivery(2, 'c_b')]
    const queue = {
      claim: (o: ClaimOptions) => ready.splice(0, o.limit),
      // Put back: at the end of the line.
      settle: (seq: number, _owner: string, outcome: Outcome) => {
        if (outcome.status === 'pending') ready.push(delivery(seq, seq === 1 ? 'c_a' : 'c_b'))
        return true
      },
      release: () => 0,
      nextDueAt: () => (waiting ? Date.now() - 1 : null),
      expediteRetries: () => 0,
    } as unknown as DeliveryQueue
    /** When each delivery's first run found its turn over (ms after it started), or null. */
    const overAt = new Map<number, number | null>()
    const processor = {
      process: async (d: QueuedDelivery, _signal: AbortSignal, turn: Turn) => {
        const start = Date.now()
        const first = !overAt.has(d.seq)
        if (first) overAt.set(d.seq, null)
        // Ten Kit calls of 300 ms each, asking before each one whether the turn is over.
        for (let call = 0; call < 10; call++) {
          if (turn.over()) {
            if (first) overAt.set(d.seq, Date.now() - start)
            return putBackForTurn(d, call)
          }
          await new Promise((resolve) => setTimeout(resolve, 300))
        }
        return { status: 'succeeded' as const, kitRequests: 10, lastError: null }
      },
    } as unknown as DeliveryProcessor
    const consumer = new Consumer({
      queue,
      processor,
      budget: { delayFor: () => 0 } as unknown as RequestBudget,
      credentials: async () =>
        new Map([
          ['c_a', 'cred_a'],
          ['c_b', 'cred_b'],
        ]),
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } as unknown as FastifyBaseLogger,
      metrics: { eventsProcessed: { inc: () => {} }, deliveryLatency: { observe: () => {} } },
      concurrency: 2,
      turnMs: 1000,
      idlePollMs: 60_000,
    })
    consumer.start()
    await vi.advanceTimersByTimeAsync(4000)
    // The deliveries in flight finish their current run (this processor does not heed aborts).
    const stopped = consumer.stop(0)
    await vi.advanceTimersByTimeAsync(4000)
    await stopped
    return overAt
  }

  it('ends once its time is up while every slot is taken and other work is due', async () => {
    const overAt = await run(true)
    // Asked before each 300 ms call: the first call past 1 s.
    expect([...overAt.values()]).toEqual([1200, 1200])
  })

  it('never ends while no other work is due', async () => {
    const overAt = await run(false)
    expect([...overAt.values()]).toEqual([null, null])
  })
})
