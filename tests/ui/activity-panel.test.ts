import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { aDelivery } from './factories.ts'
import { answerWithDefaults, button, byLabel, hasButton, mountSection, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const activity = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === 'Activity')!

describe('activity', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('lists deliveries with what happened, in words', async () => {
    vi.mocked(api.listDeliveries).mockResolvedValue({
      items: [
        aDelivery({ member_email: 'ada@example.com', event_type: 'subscription.started', status: 'succeeded', kit_requests: 4 }),
        aDelivery({
          member_email: 'bob@example.com',
          status: 'failed',
          attempts: 5,
          kit_requests: 1,
          last_error: 'Kit answered 422: Email address is invalid',
        }),
      ],
      next_cursor: null,
    })
    wrapper = await mountSection('Activity')
    const items = activity(wrapper).findAll('li.delivery')
    expect(items).toHaveLength(2)
    expect(textOf(items[0]!)).toContain('Delivered')
    expect(textOf(items[0]!)).toContain('ada@example.com · subscription.started')
    expect(textOf(items[0]!)).toContain('4 Kit requests · 1 attempt')
    expect(items[0]!.find('time').attributes('datetime')).toBe('2026-11-22T05:00:00.000Z')
    expect(textOf(items[1]!)).toContain('Failed')
    expect(textOf(items[1]!)).toContain('Last error: Kit answered 422: Email address is invalid')
    expect(hasButton(items[0]!, 'Retry subscription.started for ada@example.com')).toBe(false)
    expect(hasButton(items[1]!, 'Retry user.signed_up for bob@example.com')).toBe(true)
  })

  it('filters by member email and status', async () => {
    wrapper = await mountSection('Activity')
    vi.mocked(api.listDeliveries).mockClear()
    await byLabel(wrapper, 'Member email').setValue('bob@example.com')
    await byLabel(wrapper, 'Status').setValue('failed')
    await activity(wrapper).get('form[role="search"]').trigger('submit')
    await flushPromises()
    expect(api.listDeliveries).toHaveBeenCalledWith({
      member: 'bob@example.com',
      status: 'failed',
      order: 'oldest',
      cursor: null,
      limit: 20,
    })
    expect(textOf(activity(wrapper))).toContain('No deliveries match these filters.')

    await button(wrapper, 'Clear').trigger('click')
    await flushPromises()
    expect(vi.mocked(api.listDeliveries).mock.lastCall![0]).toMatchObject({ member: '', status: '' })
    expect(textOf(activity(wrapper))).toContain('No deliveries yet.')
  })

  it('retries a failed delivery, updates its row in place and keeps the keyboard on it', async () => {
    const failed = aDelivery({ member_email: 'bob@example.com', status: 'failed', last_error: 'Kit could not be reached' })
    vi.mocked(api.listDeliveries).mockResolvedValueOnce({ items: [failed], next_cursor: null })
    vi.mocked(api.retryDelivery).mockResolvedValue({ ...failed, status: 'pending', last_error: null })
    wrapper = await mountSection('Activity')

    await button(wrapper, 'Retry user.signed_up for bob@example.com').trigger('click')
    await flushPromises()
    expect(api.retryDelivery).toHaveBeenCalledWith(failed.id)
    expect(api.listDeliveries).toHaveBeenCalledTimes(1)
    const item = activity(wrapper).get('li.delivery')
    expect(document.activeElement).toBe(item.element)
    expect(textOf(item)).toContain('Waiting')
    expect(hasButton(item, 'Retry user.signed_up for bob@example.com')).toBe(false)
    expect(textOf(activity(wrapper).get('[aria-live="polite"]'))).toBe('Delivery queued for another try.')
  })

  it('sends a skipped delivery again, as the server now allows, and shows it queued', async () => {
    const skipped = aDelivery({
      member_email: 'sam@example.com',
      status: 'skipped',
      last_error: 'No Kit account is connected for this community, so nothing was sent to Kit.',
    })
    vi.mocked(api.listDeliveries).mockResolvedValueOnce({ items: [skipped], next_cursor: null })
    vi.mocked(api.retryDelivery).mockResolvedValue({ ...skipped, status: 'pending', last_error: null })
    wrapper = await mountSection('Activity')

    await button(wrapper, 'Send again user.signed_up for sam@example.com').trigger('click')
    await flushPromises()
    expect(api.retryDelivery).toHaveBeenCalledWith(skipped.id)
    expect(hasButton(activity(wrapper).get('li.delivery'), 'Send again user.signed_up for sam@example.com')).toBe(false)
  })

  it('says why a retry failed', async () => {
    vi.mocked(api.listDeliveries).mockResolvedValue({
      items: [aDelivery({ status: 'failed', member_email: 'c@example.com' })],
      next_cursor: null,
    })
    vi.mocked(api.retryDelivery).mockRejectedValue(new ApiError(409, 'not_retryable', 'This delivery is already being retried.'))
    wrapper = await mountSection('Activity')
    await button(wrapper, 'Retry user.signed_up for c@example.com').trigger('click')
    await flushPromises()
    expect(textOf(activity(wrapper).get('[role="alert"]'))).toBe('Retry failed: This delivery is already being retried.')
  })

  it('loads more with the cursor', async () => {
    vi.mocked(api.listDeliveries)
      .mockResolvedValueOnce({ items: [aDelivery()], next_cursor: 'next==' })
      .mockResolvedValueOnce({ items: [aDelivery()], next_cursor: null })
    wrapper = await mountSection('Activity')
    await button(wrapper, 'Load more').trigger('click')
    await flushPromises()
    expect(vi.mocked(api.listDeliveries).mock.lastCall![0]).toMatchObject({ cursor: 'next==' })
    expect(activity(wrapper).findAll('li.delivery')).toHaveLength(2)
    expect(hasButton(wrapper, 'Load more')).toBe(false)
  })

  it('explains when the server has no activity yet', async () => {
    vi.mocked(api.listDeliveries).mockRejectedValue(new ApiError(404, 'not_found', 'Nothing at GET /api/v1/deliveries'))
    wrapper = await mountSection('Activity')
    expect(textOf(activity(wrapper).get('[role="alert"]'))).toContain('Activity is not available on this server yet.')
  })
})
