import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { MemberKit } from '#shared/api.ts'
import { KIT_STATE_WARNINGS, REASON_CODES } from '../../server/core/reasons.ts'
import { api } from '../../ui/src/api/index.ts'
import { formatDate } from '../../ui/src/lib/format.ts'
import { REASON_BADGES } from '../../ui/src/lib/kit-state.ts'
import { useDeliveriesStore } from '../../ui/src/stores/deliveries.ts'
import { aDelivery } from './factories.ts'
import { answerWithDefaults, button, byLabel, mountSection, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const activity = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === 'Activity')!
const badges = (item: { findAll(selector: string): { text(): string }[] }) => item.findAll('.delivery-head .badge').map((b) => b.text())

const WORDS = 'Kit has this person as unsubscribed — forms and sequences skipped, tags and fields written.'

describe('a delivery’s badge for Kit’s side of the person', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  const show = async (...items: ReturnType<typeof aDelivery>[]) => {
    vi.mocked(api.listDeliveries).mockResolvedValue({ items, next_cursor: null })
    wrapper = await mountSection('Activity')
    return activity(wrapper).findAll('li.delivery')
  }

  it.each([
    ['kit_unsubscribed', 'Unsubscribed in Kit'],
    ['kit_bounced', 'Bounced in Kit'],
    ['kit_complained', 'Spam complaint in Kit'],
    ['resubscribe_needs_form', 'Needs an opt-in form'],
    ['resubscribe_confirming', 'Asked to confirm'],
  ])('marks a delivery made while Kit holds the person so (%s) with “%s” beside Delivered', async (reason, label) => {
    const [item] = await show(aDelivery({ status: 'succeeded', reason, last_error: WORDS }))
    expect(badges(item!)).toEqual(['Delivered', label])
    expect(item!.get('.reason-badge').classes()).toContain('reason-warning')
    expect(textOf(item!.get('.note-warning'))).toBe(`Warning: ${WORDS}`)
  })

  it('keeps the words readable in the warning step when the attempt recorded one', async () => {
    const [item] = await show(
      aDelivery({
        reason: 'kit_unsubscribed',
        last_error: WORDS,
        steps: [
          { action: 'tag.added', target: 'VIP', detail: null },
          { action: 'warning', target: null, detail: WORDS },
        ],
      }),
    )
    expect(badges(item!)).toEqual(['Delivered', 'Unsubscribed in Kit'])
    expect(textOf(item!.get('.step-warning'))).toBe(`Warning — ${WORDS}`)
  })

  it('reads a delivery skipped for want of consent as No consent, in a neutral style', async () => {
    const words = 'Skipped: this community sends only members who agreed to marketing email to Kit.'
    const [item] = await show(aDelivery({ status: 'skipped', reason: 'no_consent', kit_requests: 0, last_error: words }))
    expect(badges(item!)).toEqual(['Skipped', 'No consent'])
    expect(item!.get('.reason-badge').classes()).toContain('reason-neutral')
    expect(textOf(item!)).toContain(words)
  })

  it('adds no badge for other reasons, for no reason, or for a reason that is not a code', async () => {
    const items = await show(
      aDelivery({ status: 'skipped', reason: 'not_connected', last_error: 'No Kit account is connected.' }),
      aDelivery({ status: 'retrying', reason: 'kit_unavailable', last_error: 'Kit was unavailable.' }),
      aDelivery({ status: 'succeeded', reason: null }),
      aDelivery({ status: 'succeeded', reason: 'constructor' }),
    )
    expect(items.map(badges)).toEqual([['Skipped'], ['Retrying'], ['Delivered'], ['Delivered']])
  })

  it('names only real reason codes, and has a badge for every Kit state warning', () => {
    expect(Object.keys(REASON_BADGES).filter((code) => !(REASON_CODES as readonly string[]).includes(code))).toEqual([])
    expect(KIT_STATE_WARNINGS.filter((code) => !Object.hasOwn(REASON_BADGES, code))).toEqual([])
  })
})

describe('the member story says what Kit holds of the member', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  const search = async (email: string, memberKit?: MemberKit) => {
    wrapper = await mountSection('Activity')
    const items = [aDelivery({ member_email: 'ada@example.com' }), aDelivery({ member_email: 'ada@example.com' })]
    vi.mocked(api.listDeliveries).mockResolvedValue({ items, next_cursor: null, ...(memberKit ? { member_kit: memberKit } : {}) })
    await byLabel(wrapper, 'Member email').setValue(email)
    await activity(wrapper).get('form[role="search"]').trigger('submit')
    await flushPromises()
    return activity(wrapper)
  }

  it('says since when Kit has them unsubscribed, in one line above the story', async () => {
    const learnedAt = '2026-12-07T16:19:28.000Z'
    const section = await search('ada@example.com', { state: 'cancelled', learned_at: learnedAt, subscriber_id: 501 })
    const line = section.get('.member-kit')
    expect(textOf(line)).toBe(`In Kit: unsubscribed (since ${formatDate(learnedAt)})`)
    expect(formatDate(learnedAt)).toMatch(/2026/)
    expect(line.classes()).toContain('member-kit-quiet')
    const order = section.findAll('.member-kit, .history-caption, ul.deliveries').map((w) => w.classes()[0])
    expect(order).toEqual(['member-kit', 'history-caption', 'deliveries'])
  })

  it.each([
    ['active', 'subscribed', false],
    ['inactive', 'unconfirmed', false],
    ['bounced', 'bounced', true],
    ['complained', 'marked an email as spam', true],
  ] as const)('reads Kit’s state %s as “%s”', async (state, words, quiet) => {
    const section = await search('ada@example.com', { state, learned_at: '2026-12-01T09:00:00.000Z', subscriber_id: 501 })
    expect(textOf(section.get('.member-kit'))).toBe(`In Kit: ${words} (since ${formatDate('2026-12-01T09:00:00.000Z')})`)
    expect(section.get('.member-kit').classes().includes('member-kit-quiet')).toBe(quiet)
  })

  it('says Not yet seen in Kit while the plugin has seen nothing of them', async () => {
    const section = await search('ada@example.com', { state: null, learned_at: null, subscriber_id: 501 })
    expect(textOf(section.get('.member-kit'))).toBe('Not yet seen in Kit')
  })

  it('shows no line when the search names no one member, nor after Clear', async () => {
    const partial = await search('ada')
    expect(partial.find('.member-kit').exists()).toBe(false)

    vi.mocked(api.listDeliveries).mockResolvedValue({
      items: [aDelivery({ member_email: 'ada@example.com' })],
      next_cursor: null,
      member_kit: { state: 'bounced', learned_at: '2026-12-01T09:00:00.000Z', subscriber_id: 501 },
    })
    await byLabel(wrapper!, 'Member email').setValue('ada@example.com')
    await partial.get('form[role="search"]').trigger('submit')
    await flushPromises()
    expect(partial.find('.member-kit').exists()).toBe(true)

    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [aDelivery()], next_cursor: null })
    await button(partial, 'Clear').trigger('click')
    await flushPromises()
    expect(partial.find('.member-kit').exists()).toBe(false)
  })
})

describe('deliveries store: Kit’s side of the searched member', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.resetAllMocks()
  })

  it('takes it from the page, keeps it fresh on refresh, and forgets it with the next search', async () => {
    const seen: MemberKit = { state: 'active', learned_at: '2026-12-01T09:00:00.000Z', subscriber_id: 7 }
    const item = aDelivery({ member_email: 'ada@example.com' })
    vi.mocked(api.listDeliveries)
      .mockResolvedValueOnce({ items: [item], next_cursor: null, member_kit: seen })
      .mockResolvedValueOnce({ items: [item], next_cursor: null, member_kit: { ...seen, state: 'cancelled' } })
      .mockResolvedValueOnce({ items: [aDelivery()], next_cursor: null })
    const store = useDeliveriesStore()
    store.filters.member = 'ada@example.com'
    await store.load()
    expect(store.memberKit).toEqual(seen)
    await store.refresh()
    expect(store.memberKit?.state).toBe('cancelled')
    store.filters.member = 'ad'
    await store.load()
    expect(store.memberKit).toBeNull()
  })
})
