import type { VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { aDelivery } from './factories.ts'
import { answerWithDefaults, byLabel, mountSection, textOf } from './mount.ts'
import { flushPromises } from '@vue/test-utils'

vi.mock('../../ui/src/api/index.ts')

const activity = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === 'Activity')!
const NOW = Date.parse('2026-11-22T05:01:00.000Z')

describe('each delivery says what it did', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(NOW)
  })
  afterEach(() => {
    wrapper?.unmount()
    vi.useRealTimers()
  })

  const show = async (...items: ReturnType<typeof aDelivery>[]) => {
    vi.mocked(api.listDeliveries).mockResolvedValue({ items, next_cursor: null })
    wrapper = await mountSection('Activity')
    return activity(wrapper).findAll('li.delivery')
  }

  it('lists the steps of the last attempt with the Kit object’s names', async () => {
    const [item] = await show(
      aDelivery({
        member_email: 'ada@example.com',
        steps: [
          { action: 'subscriber.created', target: 'ada@example.com', detail: null },
          { action: 'fields.written', target: 'Subscription plan, Access level', detail: null },
          { action: 'tag.added', target: 'VIP', detail: null },
          { action: 'tag.removed', target: 'Trial', detail: null },
          { action: 'form.added', target: 'Newsletter sign-up', detail: null },
          { action: 'sequence.added', target: 'Welcome series', detail: null },
        ],
      }),
    )
    const steps = item!.get('ul.steps').findAll('li').map(textOf)
    expect(steps).toEqual([
      'Subscriber created: ada@example.com',
      'Fields written: Subscription plan, Access level',
      'Tag added: VIP',
      'Tag removed: Trial',
      'Added to form: Newsletter sign-up',
      'Added to sequence: Welcome series',
    ])
    expect(item!.get('ul.steps').attributes('aria-label')).toBe('What happened to ada@example.com')
  })

  it('says when the subscriber was unchanged and nothing was sent', async () => {
    const [item] = await show(
      aDelivery({ kit_requests: 0, steps: [{ action: 'subscriber.unchanged', target: 'b@example.com', detail: null }] }),
    )
    expect(textOf(item!)).toContain('Subscriber unchanged: b@example.com — nothing to send')
    expect(textOf(item!)).toContain('No Kit requests · 1 attempt')
  })

  it('shows warnings of a delivered event as warnings, not as a red last error', async () => {
    const text = 'Tag "Plan: {{subscription.plan}}" was left out: the event has no value for its placeholder.'
    const [withSteps, withoutSteps] = await show(
      aDelivery({
        last_error: text,
        steps: [
          { action: 'tag.added', target: 'VIP', detail: null },
          { action: 'warning', target: null, detail: text },
        ],
      }),
      aDelivery({ last_error: text }),
    )
    expect(withSteps!.find('.step-warning').exists()).toBe(true)
    expect(textOf(withSteps!.get('.step-warning'))).toBe(`Warning — ${text}`)
    expect(textOf(withSteps!)).not.toContain('Last error')
    expect(textOf(withoutSteps!.get('.note-warning'))).toBe(`Warning: ${text}`)
    expect(withoutSteps!.find('.note-error').exists()).toBe(false)
  })

  it('says why a row was skipped, in a neutral style', async () => {
    const [item] = await show(
      aDelivery({ status: 'skipped', kit_requests: 0, last_error: 'Kit is not connected for this community, so nothing was sent.' }),
    )
    expect(textOf(item!.get('.note-neutral'))).toBe('Skipped: Kit is not connected for this community, so nothing was sent.')
    expect(textOf(item!)).not.toContain('Last error')
  })

  it('shows times to the second with how long ago, and when a retrying delivery tries again', async () => {
    const [item] = await show(
      aDelivery({
        status: 'retrying',
        created_at: '2026-11-22T05:00:48.000Z',
        updated_at: '2026-11-22T05:00:50.000Z',
        next_attempt_at: '2026-11-22T05:01:30.000Z',
        last_error: 'Kit was unavailable (503); retrying with backoff.',
        steps: [{ action: 'failed', target: null, detail: 'Kit was unavailable (503); retrying with backoff.' }],
      }),
    )
    const time = item!.get('.delivery-head time')
    expect(time.attributes('datetime')).toBe('2026-11-22T05:00:48.000Z')
    expect(time.text()).toMatch(/\d{1,2}:\d{2}:\d{2}/)
    expect(textOf(item!.get('.delivery-head'))).toContain('(12 s ago)')
    expect(textOf(item!.get('.delivery-next'))).toMatch(/^Next attempt at .*\d{1,2}:\d{2}:\d{2}.* \(in 30 s\)$/)
    expect(textOf(item!.get('.step-warning'))).toBe('This attempt failed — Kit was unavailable (503); retrying with backoff.')
  })
})

describe('what happened to this member', () => {
  let wrapper: VueWrapper | undefined
  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('searches by email and shows that member’s deliveries oldest first', async () => {
    wrapper = await mountSection('Activity')
    const first = aDelivery({ member_email: 'ada@example.com', event_type: 'user.signed_up' })
    const second = aDelivery({ member_email: 'ada@example.com', event_type: 'subscription.started' })
    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [first, second], next_cursor: null })
    await byLabel(wrapper, 'Member email').setValue('ada@example.com')
    await activity(wrapper).get('form[role="search"]').trigger('submit')
    await flushPromises()
    expect(vi.mocked(api.listDeliveries).mock.lastCall![0]).toMatchObject({ member: 'ada@example.com', order: 'oldest' })
    expect(textOf(activity(wrapper))).toContain('What happened to members matching ada@example.com, oldest first:')
    expect(
      activity(wrapper)
        .findAll('li.delivery')
        .map((li) => li.get('code').text()),
    ).toEqual(['user.signed_up', 'subscription.started'])
  })
})
