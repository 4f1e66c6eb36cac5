import { flushPromises, type DOMWrapper, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { EVENT_DESCRIPTIONS, EVENT_TYPES } from '../../shared/events.ts'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { answerWithDefaults, button, byLabel, mountPanel, textOf, type Root } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const card = (wrapper: VueWrapper, type: string) => wrapper.get(`article[aria-label="${type}"]`)
const chips = (root: Root, label: string) =>
  root.findAll(`ul.chips[aria-label^="${label}"] li > span`).map((s) => s.text())

async function pickByTyping(input: DOMWrapper<HTMLInputElement>, text: string): Promise<void> {
  await input.trigger('focus')
  await input.setValue(text)
  await input.trigger('keydown', { key: 'Enter' })
  await flushPromises()
}

describe('event mappings', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('lists every event type with what it means', async () => {
    wrapper = await mountPanel()
    for (const type of EVENT_TYPES) {
      expect(textOf(card(wrapper, type))).toContain(EVENT_DESCRIPTIONS[type])
    }
    expect(textOf(wrapper)).toContain('Tag names may hold {{access.level}}, {{subscription.plan}} or {{member.fields.mk_…}}')
  })

  it('marks an edit as unsaved, tells the host, and saves the whole document', async () => {
    wrapper = await mountPanel()
    const reportDirty = vi.spyOn(useSessionStore(), 'reportDirty')
    expect(textOf(wrapper.find('.savebar-status'))).toBe('All changes saved')
    expect(button(wrapper, 'Save mappings').attributes('disabled')).toBeDefined()

    await pickByTyping(byLabel(wrapper, 'Add tags for user.signed_up'), 'vip')
    expect(chips(card(wrapper, 'user.signed_up'), 'Add tags')).toEqual(['New Member', 'VIP'])
    expect(textOf(wrapper.find('.savebar-status'))).toBe('Unsaved changes')
    expect(reportDirty).toHaveBeenLastCalledWith(true)

    await wrapper.find('.savebar').element.closest('form')!.dispatchEvent(new Event('submit'))
    await flushPromises()

    expect(api.saveMappings).toHaveBeenCalledTimes(1)
    const sent = vi.mocked(api.saveMappings).mock.calls[0]![0]
    expect(sent.events['user.signed_up']!.add_tags).toEqual([{ name: 'New Member' }, { id: 3, name: 'VIP' }])
    expect(Object.keys(sent.events)).toEqual([...EVENT_TYPES])
    expect(sent.fields).toHaveLength(2)
    expect(textOf(wrapper.find('.savebar-status'))).toBe('All changes saved')
    expect(reportDirty).toHaveBeenLastCalledWith(false)
  })

  it('creates a tag Kit does not have yet', async () => {
    vi.mocked(api.createTag).mockResolvedValue({ id: 99, name: 'Founders' })
    wrapper = await mountPanel()
    const input = byLabel(wrapper, 'Remove tags for user.deleted')
    await input.trigger('focus')
    await input.setValue('Founders')
    expect(wrapper.findAll('[role="option"]').map((o) => o.text())).toContain('Create tag “Founders” in Kit')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(api.createTag).toHaveBeenCalledWith('Founders')
    expect(chips(card(wrapper, 'user.deleted'), 'Remove tags')).toEqual(['Founders'])
  })

  it('keeps a tag name with a placeholder to be created on first use', async () => {
    wrapper = await mountPanel()
    await pickByTyping(byLabel(wrapper, 'Add tags for subscription.started'), 'Plan: {{subscription.plan}}')
    expect(api.createTag).not.toHaveBeenCalled()
    expect(chips(card(wrapper, 'subscription.started'), 'Add tags')).toEqual(['Active Member', 'Plan: {{subscription.plan}}'])
  })

  it('refuses an unknown placeholder beside the picker', async () => {
    wrapper = await mountPanel()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    await pickByTyping(input, 'Hi {{member.email}}')
    expect(textOf(card(wrapper, 'user.updated').find('[role="alert"]'))).toContain('{{member.email}} is not a known placeholder')
    expect(input.attributes('aria-invalid')).toBe('true')
    expect(api.createTag).not.toHaveBeenCalled()
  })

  it('moves through the suggestions with the arrow keys', async () => {
    wrapper = await mountPanel()
    const input = byLabel(wrapper, 'Add to sequences for access.granted')
    await input.trigger('focus')
    await input.trigger('keydown', { key: 'ArrowDown' })
    const option = wrapper.get(`#${input.attributes('aria-activedescendant')}`)
    expect(option.text()).toBe('Welcome series')
    await input.trigger('keydown', { key: 'Enter' })
    expect(chips(card(wrapper, 'access.granted'), 'Add to sequences')).toEqual(['Welcome series'])
  })

  it('offers only forms that are not archived, and removes a chosen one', async () => {
    wrapper = await mountPanel()
    const input = byLabel(wrapper, 'Add to forms for user.signed_up')
    await input.trigger('focus')
    const listbox = wrapper.get(`#${input.attributes('aria-controls')}`)
    expect(listbox.findAll('[role="option"]').map((o) => o.text())).toEqual(['Newsletter sign-up'])
    await listbox.get('[role="option"]').trigger('mousedown')
    expect(chips(card(wrapper, 'user.signed_up'), 'Add to forms')).toEqual(['Newsletter sign-up'])
    await button(wrapper, 'Remove Newsletter sign-up from add to forms for user.signed_up').trigger('click')
    expect(chips(card(wrapper, 'user.signed_up'), 'Add to forms')).toEqual([])
  })

  it('shows a server refusal beside the part it names', async () => {
    vi.mocked(api.saveMappings).mockRejectedValue(
      new ApiError(400, 'invalid_mappings', 'events.user.deleted.add_tags[0].name must not be blank'),
    )
    wrapper = await mountPanel()
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    await button(wrapper, 'Save mappings').element.form!.dispatchEvent(new Event('submit'))
    await flushPromises()
    const alerts = card(wrapper, 'user.deleted').findAll('[role="alert"]').map(textOf)
    expect(alerts).toEqual(['events.user.deleted.add_tags[0].name must not be blank'])
    expect(textOf(wrapper.find('.savebar [role="alert"]'))).toContain('Nothing was saved')
  })

  it('shows when the mappings cannot be loaded', async () => {
    vi.mocked(api.getMappings).mockRejectedValue(new ApiError(500, 'internal', 'Something went wrong on our side.'))
    wrapper = await mountPanel()
    expect(textOf(wrapper)).toContain('The mappings could not be loaded: Something went wrong on our side.')
  })

  it('still lets you type tag names when Kit’s lists cannot be loaded', async () => {
    vi.mocked(api.listTags).mockRejectedValue(new ApiError(502, 'kit_error', 'Kit refused the request: Internal error.'))
    wrapper = await mountPanel()
    expect(textOf(card(wrapper, 'user.signed_up'))).toContain("Kit's tags could not be loaded (Kit refused the request: Internal error.). You can still type a name.")
  })
})

describe('field mappings', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  const rows = (w: VueWrapper) => w.findAll('.rows > li')

  it('shows the default rows with their Kit keys', async () => {
    wrapper = await mountPanel()
    expect(rows(wrapper).map((r) => [r.findAll('input')[0]!.element.value, r.findAll('input')[1]!.element.value])).toEqual([
      ['mk_subscription_plan', 'Subscription plan'],
      ['mk_access_level', 'Access level'],
    ])
    expect(textOf(rows(wrapper)[1]!)).toContain('Key access_level · new field')
  })

  it('refuses a member field that is already mapped, inline, and saves nothing', async () => {
    wrapper = await mountPanel()
    await button(wrapper, 'Add field mapping').trigger('click')
    await byLabel(wrapper, 'Member field 3').setValue('mk_access_level')
    await byLabel(wrapper, 'Kit field 3').setValue('Level')

    const row = rows(wrapper)[2]!
    expect(textOf(row.get('[role="alert"]'))).toBe('mk_access_level is already mapped above.')
    expect(byLabel(wrapper, 'Member field 3').attributes('aria-invalid')).toBe('true')

    await button(wrapper, 'Save mappings').element.form!.dispatchEvent(new Event('submit'))
    await flushPromises()
    expect(api.saveMappings).not.toHaveBeenCalled()
    expect(textOf(wrapper.find('.savebar [role="alert"]'))).toBe('Nothing was saved: fix the problems marked below first.')
  })

  it('refuses a member field name that does not follow mk_', async () => {
    wrapper = await mountPanel()
    await button(wrapper, 'Add field mapping').trigger('click')
    await byLabel(wrapper, 'Member field 3').setValue('Country')
    expect(textOf(rows(wrapper)[2]!.get('[role="alert"]'))).toMatch(/start with mk_/)
  })

  it('maps a new member field to a new Kit field named by its label', async () => {
    wrapper = await mountPanel()
    await button(wrapper, 'Add field mapping').trigger('click')
    await byLabel(wrapper, 'Member field 3').setValue('mk_member_since')
    await byLabel(wrapper, 'Kit field 3').setValue('Member since')
    expect(textOf(rows(wrapper)[2]!)).toContain('Key member_since · new field')

    await button(wrapper, 'Remove mapping 1 (mk_subscription_plan)').trigger('click')
    await button(wrapper, 'Save mappings').element.form!.dispatchEvent(new Event('submit'))
    await flushPromises()
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].fields).toEqual([
      { source: 'mk_access_level', kit_field: { key: 'access_level', label: 'Access level' } },
      { source: 'mk_member_since', kit_field: { key: 'member_since', label: 'Member since' } },
    ])
  })
})
