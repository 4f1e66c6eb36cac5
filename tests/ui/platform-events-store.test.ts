import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { FAILED_LIMIT, usePlatformEventsStore } from '../../ui/src/stores/platformEvents.ts'
import { aPlatformEvent, aPlatformEventSummary } from './factories.ts'
import { answerPlatformEvents } from './platform-events-answers.ts'

vi.mock('../../ui/src/api/index.ts')

describe('platform events store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.resetAllMocks()
  })

  it('reads the summary and, when configured, the failed events', async () => {
    const failed = aPlatformEvent()
    answerPlatformEvents({ counts: [{ type: 'kit.subscriber.unsubscribed', state: 'failed', count: 1 }] }, [failed], 'c2')
    const store = usePlatformEventsStore()
    await store.load()
    expect(api.listPlatformEvents).toHaveBeenCalledWith({ status: 'failed', limit: FAILED_LIMIT })
    expect(store.configured).toBe(true)
    expect(store.failed.map((e) => e.id)).toEqual([failed.id])
    expect(store.moreFailed).toBe(true)
    expect(store.error).toBeNull()
  })

  it('asks for no failed events when nothing is configured', async () => {
    answerPlatformEvents({ configured: false })
    const store = usePlatformEventsStore()
    await store.load()
    expect(api.listPlatformEvents).not.toHaveBeenCalled()
    expect(store.configured).toBe(false)
    expect(store.failed).toEqual([])
  })

  it('adds the counts up by type, every state in its column, the busiest type first', async () => {
    answerPlatformEvents(
      {
        counts: [
          { type: 'kit.subscriber.updated', state: 'sent', count: 2 },
          { type: 'kit.subscriber.unsubscribed', state: 'sent', count: 5 },
          { type: 'kit.subscriber.unsubscribed', state: 'failed', count: 1 },
          { type: 'kit.subscriber.updated', state: 'pending', count: 1 },
        ],
      },
      [],
    )
    const store = usePlatformEventsStore()
    await store.load()
    expect(store.byType).toEqual([
      { type: 'kit.subscriber.unsubscribed', sent: 5, pending: 0, failed: 1 },
      { type: 'kit.subscriber.updated', sent: 2, pending: 1, failed: 0 },
    ])
  })

  it('keeps what it showed when a reload fails, and says why', async () => {
    vi.mocked(api.getPlatformEventSummary)
      .mockResolvedValueOnce(aPlatformEventSummary())
      .mockRejectedValueOnce(new ApiError(503, 'unavailable', 'Try later'))
    vi.mocked(api.listPlatformEvents).mockResolvedValue({ items: [aPlatformEvent()], next_cursor: null })
    const store = usePlatformEventsStore()
    await store.load()
    await store.load()
    expect(store.error?.code).toBe('unavailable')
    expect(store.summary?.configured).toBe(true)
    expect(store.failed).toHaveLength(1)
    expect(store.loading).toBe(false)
  })

  it('retries a failed event: it leaves the failed list and is remembered as sent again', async () => {
    const [a, b] = [aPlatformEvent(), aPlatformEvent()]
    answerPlatformEvents({}, [a, b])
    vi.mocked(api.retryPlatformEvent).mockResolvedValue(undefined)
    const store = usePlatformEventsStore()
    await store.load()
    await store.retry(a.id)
    expect(api.retryPlatformEvent).toHaveBeenCalledWith(a.id)
    expect(store.failed.map((e) => e.id)).toEqual([b.id])
    expect(store.retried).toEqual([a.id])
    expect(store.retrying).toBeNull()
  })

  it('keeps a failed event whose retry was refused, with the reason as a code', async () => {
    const a = aPlatformEvent()
    answerPlatformEvents({}, [a])
    vi.mocked(api.retryPlatformEvent).mockRejectedValue(new ApiError(409, 'not_retryable', 'Only failed platform events can be sent again'))
    const store = usePlatformEventsStore()
    await store.load()
    await store.retry(a.id)
    expect(store.failed.map((e) => e.id)).toEqual([a.id])
    expect(store.retryError?.code).toBe('not_retryable')
    expect(store.retried).toEqual([])
  })

  it('sends one retry at a time', async () => {
    const [a, b] = [aPlatformEvent(), aPlatformEvent()]
    answerPlatformEvents({}, [a, b])
    let answer!: () => void
    vi.mocked(api.retryPlatformEvent).mockImplementation(() => new Promise<void>((resolve) => (answer = resolve)))
    const store = usePlatformEventsStore()
    await store.load()
    const first = store.retry(a.id)
    await store.retry(b.id)
    expect(api.retryPlatformEvent).toHaveBeenCalledTimes(1)
    answer()
    await first
    expect(store.failed.map((e) => e.id)).toEqual([b.id])
  })
})
