import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { aConnection, aDelivery, aDisconnectedConnection } from './factories.ts'
import { answerWithDefaults, button, byLabel, hasButton, mountPanel, settled, showSection, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const OFFER = 'Send 12 events recorded while Kit was not connected'
const recorded = {
  count: 12,
  members: 5,
  event_types: [
    { event_type: 'user.signed_up', count: 7 },
    { event_type: 'subscription.started', count: 5 },
  ],
}
const none = { count: 0, members: 0, event_types: [] }
const connection = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === 'Kit connection')!
const activity = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === 'Activity')!

describe('sending the events recorded while Kit was not connected', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('offers them right after Connect, with the count, the members and the event types from the server', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    vi.mocked(api.connect).mockResolvedValue(aConnection())
    vi.mocked(api.countReplayable).mockResolvedValue(recorded)
    wrapper = await mountPanel()
    expect(api.countReplayable).not.toHaveBeenCalled()
    expect(hasButton(wrapper, OFFER)).toBe(false)

    await byLabel(wrapper, 'Kit API key').setValue('kit_key_123')
    await wrapper.find('form').trigger('submit')
    await flushPromises()
    await settled(wrapper)

    expect(api.countReplayable).toHaveBeenCalledTimes(1)
    expect(hasButton(connection(wrapper), OFFER)).toBe(true)
    expect(textOf(connection(wrapper))).toContain(
      '12 events were recorded while Kit was not connected, for 5 members: 7 × Member signs up, 5 × Subscription starts.',
    )
  })

  it('offers nothing when no event was recorded while Kit was not connected', async () => {
    vi.mocked(api.countReplayable).mockResolvedValue(none)
    wrapper = await mountPanel()
    expect(api.countReplayable).toHaveBeenCalledTimes(1)
    expect(textOf(connection(wrapper))).not.toContain('recorded while Kit was not connected')
  })

  it('sends them, calling again while some remain, says how it went and shows them in Activity', async () => {
    vi.mocked(api.countReplayable)
      .mockResolvedValueOnce({ ...recorded, count: 12_000 })
      .mockResolvedValue(none)
    let secondCall!: (answer: { queued: number; remaining: number }) => void
    vi.mocked(api.replayNotConnected)
      .mockResolvedValueOnce({ queued: 10_000, remaining: 2000 })
      .mockReturnValueOnce(new Promise((resolve) => (secondCall = resolve)))
    wrapper = await mountPanel()
    const queuedAgain = aDelivery({ status: 'pending', member_email: 'early@example.com' })
    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [queuedAgain], next_cursor: null })

    await button(wrapper, 'Send 12000 events recorded while Kit was not connected').trigger('click')
    await flushPromises()
    expect(textOf(connection(wrapper).get('.replay[aria-live="polite"]'))).toBe('Sending recorded events to Kit… 10000 of 12000 queued')
    secondCall({ queued: 2000, remaining: 0 })
    await flushPromises()

    expect(api.replayNotConnected).toHaveBeenCalledTimes(2)
    const live = connection(wrapper).get('.replay[aria-live="polite"]')
    expect(textOf(live)).toBe('12000 events on the way to Kit, oldest first. Activity shows each one as it is sent.')
    expect(textOf(connection(wrapper))).not.toContain('recorded while Kit was not connected, for')
    await showSection(wrapper, 'Activity')
    expect(textOf(activity(wrapper))).toContain('early@example.com')
  })

  it('says why the events were not sent and offers them again', async () => {
    vi.mocked(api.countReplayable).mockResolvedValue(recorded)
    vi.mocked(api.replayNotConnected).mockRejectedValue(
      new ApiError(429, 'rate_limited', 'Too many settings requests; try again in 20 s.', 20),
    )
    wrapper = await mountPanel()
    await button(wrapper, OFFER).trigger('click')
    await flushPromises()
    expect(textOf(connection(wrapper).get('[role="alert"]'))).toBe(
      'The recorded events were not sent: Too many settings requests; try again in 20 s.',
    )
    expect(hasButton(connection(wrapper), OFFER)).toBe(true)
  })

  it('counts again when another key is saved', async () => {
    vi.mocked(api.countReplayable).mockResolvedValueOnce(none).mockResolvedValue(recorded)
    vi.mocked(api.connect).mockResolvedValue(aConnection({ updated_at: '2026-11-30T10:00:00.000Z', key_hint: '…c3d4' }))
    wrapper = await mountPanel()
    expect(hasButton(wrapper, OFFER)).toBe(false)
    await button(wrapper, 'Use another key').trigger('click')
    await byLabel(wrapper, 'Kit API key').setValue('kit_other_key')
    await wrapper.find('form').trigger('submit')
    await flushPromises()
    await settled(wrapper)
    expect(api.countReplayable).toHaveBeenCalledTimes(2)
    expect(hasButton(wrapper, OFFER)).toBe(true)
  })
})
