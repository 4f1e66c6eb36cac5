import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { aDelivery } from './factories.ts'
import { answerWithDefaults, mountSection, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const activity = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === 'Activity')!
const calls = () => vi.mocked(api.listDeliveries).mock.calls.length

let visibility: DocumentVisibilityState = 'visible'
function setVisibility(state: DocumentVisibilityState): void {
  visibility = state
  document.dispatchEvent(new Event('visibilitychange'))
}

async function wait(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  await flushPromises()
}

describe('live activity', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    visibility = 'visible'
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility })
  })
  afterEach(() => {
    wrapper?.unmount()
    vi.useRealTimers()
  })

  it('shows a new delivery within two seconds without pressing Refresh, and announces it', async () => {
    const fresh = aDelivery({ member_email: 'grace@example.com', status: 'pending', kit_requests: 0 })
    vi.mocked(api.listDeliveries)
      .mockResolvedValueOnce({ items: [], next_cursor: null })
      .mockResolvedValue({ items: [fresh], next_cursor: null })
    wrapper = await mountSection('Activity')
    expect(textOf(activity(wrapper))).toContain('No deliveries yet.')

    await wait(2000)
    expect(textOf(activity(wrapper))).toContain('grace@example.com')
    expect(textOf(activity(wrapper).get('[aria-live="polite"]'))).toBe('1 new delivery.')
  })

  it('shows a status change in place while a delivery is pending', async () => {
    const pending = aDelivery({ member_email: 'ada@example.com', status: 'pending', kit_requests: 0 })
    vi.mocked(api.listDeliveries)
      .mockResolvedValueOnce({ items: [pending], next_cursor: null })
      .mockResolvedValue({
        items: [{ ...pending, status: 'succeeded', kit_requests: 2, updated_at: '2026-11-22T05:00:09.000Z' }],
        next_cursor: null,
      })
    wrapper = await mountSection('Activity')
    expect(textOf(activity(wrapper).get('li.delivery'))).toContain('Waiting')
    await wait(1500)
    expect(textOf(activity(wrapper).get('li.delivery'))).toContain('Delivered')
  })

  it('backs off while nothing changes, and is fast again after the owner does something', async () => {
    wrapper = await mountSection('Activity')
    await wait(10_000)
    expect(calls()).toBeGreaterThanOrEqual(8)
    await wait(20_000)
    const hot = calls()
    await wait(120_000)
    const slow = calls() - hot
    expect(slow).toBeGreaterThan(0)
    expect(slow).toBeLessThanOrEqual(14)

    document.body.dispatchEvent(new Event('pointerdown', { bubbles: true }))
    const before = calls()
    await wait(3100)
    expect(calls() - before).toBeGreaterThanOrEqual(3)
  })

  it('reads every three seconds, not every second, while a delivery stays pending and the owner does nothing', async () => {
    const pending = aDelivery({ member_email: 'ada@example.com', status: 'pending', kit_requests: 0 })
    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [pending], next_cursor: null })
    wrapper = await mountSection('Activity')
    await wait(10_000)
    const before = calls()
    await wait(60_000)
    expect(calls() - before).toBeGreaterThanOrEqual(15)
    expect(calls() - before).toBeLessThanOrEqual(21)
  })

  it('stops while the document is hidden and looks again as soon as it is visible', async () => {
    wrapper = await mountSection('Activity')
    await wait(1100)
    setVisibility('hidden')
    const before = calls()
    await wait(60_000)
    expect(calls()).toBe(before)

    setVisibility('visible')
    await flushPromises()
    expect(calls()).toBe(before + 1)
  })

  it('stops when the owner has been away for five minutes and resumes on focus', async () => {
    wrapper = await mountSection('Activity')
    await wait(5 * 60_000 + 20_000)
    const before = calls()
    await wait(10 * 60_000)
    expect(calls()).toBe(before)

    window.dispatchEvent(new Event('focus'))
    await flushPromises()
    expect(calls()).toBe(before + 1)
  })

  it('waits for a retrying delivery’s next attempt rather than polling it every second', async () => {
    const now = Date.now()
    const retrying = aDelivery({
      status: 'retrying',
      next_attempt_at: new Date(now + 90_000).toISOString(),
      last_error: 'Kit was unavailable',
    })
    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [retrying], next_cursor: null })
    wrapper = await mountSection('Activity')
    await wait(40_000)
    const cooled = calls()
    await wait(48_000)
    expect(calls() - cooled).toBeLessThanOrEqual(5)
    const beforeDue = calls()
    await wait(3000)
    expect(calls()).toBeGreaterThan(beforeDue)
  })

  it('honours Retry-After when the settings API says slow down', async () => {
    vi.mocked(api.listDeliveries)
      .mockResolvedValueOnce({ items: [], next_cursor: null })
      .mockRejectedValueOnce(new ApiError(429, 'rate_limited', 'Too many settings requests. Try again in 20 s.', 20))
      .mockResolvedValue({ items: [], next_cursor: null })
    wrapper = await mountSection('Activity')
    await wait(1100)
    const after429 = calls()
    await wait(18_000)
    expect(calls()).toBe(after429)
    await wait(3000)
    expect(calls()).toBeGreaterThan(after429)
  })
})
