import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyBaseLogger } from 'fastify'
import { Consumer } from '../../server/pipeline/consumer.ts'
import type { DeliveryQueue, QueuedDelivery } from '../../server/core/queue.ts'
import type { DeliveryProcessor } from '../../server/pipeline/processor.ts'
import type { RequestBudget } from '../../server/kit/budget.ts'
import type { Metrics } from '../../server/plugins/metrics.ts'
import { queuedDelivery } from '../helpers/deliveries.ts'

const delivery = (seq: number): QueuedDelivery => queuedDelivery({ seq, id: `dlv_${seq}`, communityId: 'c_1', memberId: 'm_1' })

/** A queue in memory whose claims can be counted; only the verbs the consumer uses do anything. */
function memoryQueue() {
  const ready: QueuedDelivery[] = []
  const settled: number[] = []
  let claims = 0
  const queue = {
    claim: () => {
      claims++
      return ready.splice(0)
    },
    settle: (seq: number) => {
      settled.push(seq)
      return true
    },
    release: () => 0,
    nextDueAt: () => null,
    expediteRetries: () => 0,
  } as unknown as DeliveryQueue
  return { queue, ready, settled, claims: () => claims }
}

const metrics = {
  eventsProcessed: { inc: () => {} },
  deliveryLatency: { observe: () => {} },
} as unknown as Metrics
const log = { info: () => {}, warn: () => {}, error: () => {} } as unknown as FastifyBaseLogger
const budget = { delayFor: () => 0 } as unknown as RequestBudget
const processor = {
  process: async () => ({ status: 'succeeded' as const, kitRequests: 0, lastError: null }),
} as unknown as DeliveryProcessor

/** A consumer with no credentials to wait on, so only its claim loop and idle wait run. */
const idleConsumer = (queue: DeliveryQueue, idlePollMs: number) =>
  new Consumer({ queue, processor, budget, credentials: async () => new Map(), log, metrics, idlePollMs })

describe('consumer wake-ups', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('does not lose a notify() that arrives during the pause after an empty claim', async () => {
    const q = memoryQueue()
    const consumer = idleConsumer(q.queue, 60_000)
    consumer.start()
    await vi.advanceTimersByTimeAsync(1)
    expect(q.claims()).toBe(1)
    // The loop is now in its short pause after the empty claim: work arrives and is notified.
    q.ready.push(delivery(1))
    consumer.notify()
    await vi.advanceTimersByTimeAsync(50)
    expect(q.settled).toEqual([1])
    const stopped = consumer.stop(0)
    await vi.advanceTimersByTimeAsync(50)
    await stopped
  })

  it('does not lose a notify() that arrives during the pause after an idle wait ran out', async () => {
    const q = memoryQueue()
    const consumer = idleConsumer(q.queue, 100)
    consumer.start()
    // t=0 empty claim, pause to t=10, idle until t=110 (runs out), empty claim, pause to t=120.
    await vi.advanceTimersByTimeAsync(115)
    expect(q.claims()).toBe(2)
    q.ready.push(delivery(1))
    consumer.notify()
    await vi.advanceTimersByTimeAsync(25)
    expect(q.settled).toEqual([1])
    const stopped = consumer.stop(0)
    await vi.advanceTimersByTimeAsync(150)
    await stopped
  })

  it('stops promptly when asked during the pause, not after a full idle poll', async () => {
    const q = memoryQueue()
    const consumer = idleConsumer(q.queue, 60_000)
    consumer.start()
    await vi.advanceTimersByTimeAsync(1)
    let done = false
    const stopped = consumer.stop(0).then(() => {
      done = true
    })
    await vi.advanceTimersByTimeAsync(50)
    expect(done).toBe(true)
    await stopped
  })
})
