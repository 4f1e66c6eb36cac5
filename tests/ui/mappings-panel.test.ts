import { flushPromises, type DOMWrapper, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { EVENT_DESCRIPTIONS, EVENT_TYPES } from '#shared/events.ts'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { answerWithDefaults, button, byLabel, hasButton, mountEditor, mountSection, textOf, type Root } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const card = (wrapper: VueWrapper, type: string) => wrapper.get(`article[aria-label$="(${type})"]`)
const chips = (root: Root, label: string) => root.findAll(`ul.chips[aria-label^="${label}"] li > span:first-child`).map((s) => s.text())
/** The suggestions a picker shows. */
const optionsOf = (wrapper: VueWrapper, input: DOMWrapper<HTMLInputElement>) =>
  wrapper
    .get(`[id="${input.attributes('aria-controls')}"]`)
    .findAll('[role="option"]')
    .map((o) => o.text())

/** The API calls the panel made, by name: the read-only ones are all an edit may cause before Save (sections never shown read nothing). */
const calledApi = () =>
  Object.entries(api)
    .filter(([, fn]) => vi.isMockFunction(fn) && fn.mock.calls.length > 0)
    .map(([name]) => name)
    .sort()
const READS = [
  'countReplayable',
  'getConnection',
  'getConsent',
  'getMappings',
  'listCustomFields',
  'listForms',
  'listSequences',
  'listTags',
]

/** Only reads were made (waiting for the Kit → App Station section, loaded on demand, to make its own). */
// The Rules section's history list reads its versions too.
const readsOnly = () => vi.waitFor(() => expect(calledApi().filter((c) => c !== 'listMappingVersions')).toEqual(READS))

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
    wrapper = await mountEditor()
    for (const type of EVENT_TYPES) {
      expect(textOf(card(wrapper, type))).toContain(EVENT_DESCRIPTIONS[type])
    }
    expect(textOf(wrapper)).toContain('Tag names may hold {{access.level}}, {{subscription.plan}} or {{member.fields.mk_…}}')
  })

  it('marks an edit as unsaved, tells the host, and saves the whole document', async () => {
    wrapper = await mountEditor()
    const reportDirty = vi.spyOn(useSessionStore(), 'reportDirty')
    expect(textOf(wrapper.find('.savebar-status'))).toBe('All changes saved')
    expect(hasButton(wrapper, 'Save mappings')).toBe(false)

    await pickByTyping(byLabel(wrapper, 'Add tags for user.signed_up'), 'vip')
    expect(chips(card(wrapper, 'user.signed_up'), 'Add tags')).toEqual(['New Member', 'VIP'])
    expect(textOf(wrapper.find('.savebar-status'))).toBe('Unsaved changes')
    expect(reportDirty).toHaveBeenLastCalledWith(true)

    wrapper.find('.savebar').element.closest('form')!.dispatchEvent(new Event('submit'))
    await flushPromises()

    expect(api.saveMappings).toHaveBeenCalledTimes(1)
    const sent = vi.mocked(api.saveMappings).mock.calls[0]![0]
    expect(sent.events['user.signed_up']!.add_tags).toEqual([{ name: 'New Member' }, { id: 3, name: 'VIP' }])
    expect(Object.keys(sent.events)).toEqual([...EVENT_TYPES])
    expect(sent.fields).toHaveLength(2)
    expect(textOf(wrapper.find('.savebar-status'))).toBe('All changes saved')
    expect(reportDirty).toHaveBeenLastCalledWith(false)
  })

  it('keeps a tag Kit does not have yet in the draft, writes nothing to Kit, and sends it by name on save', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Remove tags for user.deleted')
    await input.trigger('focus')
    await input.setValue('Founders')
    expect(optionsOf(wrapper, input)).toEqual(['Create tag “Founders” in Kit on first use'])
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(chips(card(wrapper, 'user.deleted'), 'Remove tags')).toEqual(['Founders'])
    expect(textOf(card(wrapper, 'user.deleted').get('.chip'))).toContain('new, created in Kit on first use')
    await readsOnly()

    // The new name is offered in the other pickers too, still without asking Kit.
    const other = byLabel(wrapper, 'Add tags for user.updated')
    await other.trigger('focus')
    await other.setValue('found')
    expect(optionsOf(wrapper, other)).toEqual(['Founders', 'Create tag “found” in Kit on first use'])

    await wrapper.get('form.mappings-form').trigger('submit')
    await flushPromises()
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].events['user.deleted']!.remove_tags).toEqual([{ name: 'Founders' }])
  })

  it('discards a new tag without anything having been written to Kit', async () => {
    wrapper = await mountEditor()
    await pickByTyping(byLabel(wrapper, 'Add tags for user.updated'), 'Brand new')
    expect(chips(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['Brand new'])
    await button(wrapper, 'Discard changes').trigger('click')
    await flushPromises()
    expect(chips(card(wrapper, 'user.updated'), 'Add tags')).toEqual([])
    expect(textOf(wrapper.find('.savebar-status'))).toBe('All changes saved')
    expect(document.activeElement).toBe(wrapper.find('.savebar-status').element)
    await readsOnly()
  })

  it('keeps a tag name with a placeholder to be created on first use', async () => {
    wrapper = await mountEditor()
    await pickByTyping(byLabel(wrapper, 'Add tags for subscription.started'), 'Plan: {{subscription.plan}}')
    await readsOnly()
    expect(chips(card(wrapper, 'subscription.started'), 'Add tags')).toEqual(['Active Member', 'Plan: {{subscription.plan}}'])
  })

  it('refuses an unknown placeholder beside the picker', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    await pickByTyping(input, 'Hi {{member.email}}')
    expect(textOf(card(wrapper, 'user.updated').find('[role="alert"]'))).toContain('{{member.email}} is not a known placeholder')
    expect(input.attributes('aria-invalid')).toBe('true')
    await readsOnly()
  })

  it('moves through the suggestions with the arrow keys', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add to sequences for access.granted')
    await input.trigger('focus')
    await input.trigger('keydown', { key: 'ArrowDown' })
    const option = wrapper.get(`#${input.attributes('aria-activedescendant')}`)
    expect(option.text()).toBe('Welcome series')
    await input.trigger('keydown', { key: 'Enter' })
    expect(chips(card(wrapper, 'access.granted'), 'Add to sequences')).toEqual(['Welcome series'])
  })

  it('offers only forms that are not archived, and removes a chosen one', async () => {
    wrapper = await mountEditor()
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
    wrapper = await mountEditor()
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    button(wrapper, 'Save mappings').element.form!.dispatchEvent(new Event('submit'))
    await flushPromises()
    const alerts = card(wrapper, 'user.deleted').findAll('[role="alert"]').map(textOf)
    expect(alerts).toEqual(['events.user.deleted.add_tags[0].name must not be blank'])
    expect(textOf(wrapper.find('.savebar [role="alert"]'))).toContain('Nothing was saved')
  })

  it('shows when the mappings cannot be loaded', async () => {
    vi.mocked(api.getMappings).mockRejectedValue(new ApiError(500, 'internal', 'Something went wrong on our side.'))
    wrapper = await mountEditor()
    expect(textOf(wrapper)).toContain('The mappings could not be loaded: Something went wrong on our side.')
  })

  it('still lets you type tag names when Kit’s lists cannot be loaded', async () => {
    vi.mocked(api.listTags).mockRejectedValue(new ApiError(502, 'kit_error', 'Kit refused the request: Internal error.'))
    wrapper = await mountEditor()
    expect(textOf(card(wrapper, 'user.signed_up'))).toContain(
      "Kit's tags could not be loaded (Kit refused the request: Internal error.). You can still type a name.",
    )
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
    wrapper = await mountSection('Fields')
    expect(rows(wrapper).map((r) => [r.findAll('input')[0]!.element.value, r.findAll('input')[1]!.element.value])).toEqual([
      ['mk_subscription_plan', 'Subscription plan'],
      ['mk_access_level', 'Access level'],
    ])
    expect(textOf(rows(wrapper)[1]!)).toContain('Key access_level · new field')
  })

  it('refuses a member field that is already mapped, inline, and saves nothing', async () => {
    wrapper = await mountSection('Fields')
    await button(wrapper, 'Add field mapping').trigger('click')
    await byLabel(wrapper, 'Member field 3').setValue('mk_access_level')
    await byLabel(wrapper, 'Kit field 3').setValue('Level')

    const row = rows(wrapper)[2]!
    expect(textOf(row.get('[role="alert"]'))).toBe('mk_access_level is already mapped above.')
    expect(byLabel(wrapper, 'Member field 3').attributes('aria-invalid')).toBe('true')

    button(wrapper, 'Save mappings').element.form!.dispatchEvent(new Event('submit'))
    await flushPromises()
    expect(api.saveMappings).not.toHaveBeenCalled()
    expect(textOf(wrapper.find('.savebar [role="alert"]'))).toBe('Nothing was saved: fix the problems marked below first.')
  })

  it('refuses a member field name that does not follow mk_', async () => {
    wrapper = await mountSection('Fields')
    await button(wrapper, 'Add field mapping').trigger('click')
    await byLabel(wrapper, 'Member field 3').setValue('Country')
    expect(textOf(rows(wrapper)[2]!.get('[role="alert"]'))).toMatch(/start with mk_/)
  })

  it('maps a new member field to a new Kit field named by its label', async () => {
    wrapper = await mountSection('Fields')
    await button(wrapper, 'Add field mapping').trigger('click')
    await byLabel(wrapper, 'Member field 3').setValue('mk_member_since')
    await byLabel(wrapper, 'Kit field 3').setValue('Member since')
    expect(textOf(rows(wrapper)[2]!)).toContain('Key member_since · new field')

    await button(wrapper, 'Remove mapping 1 (mk_subscription_plan)').trigger('click')
    button(wrapper, 'Save mappings').element.form!.dispatchEvent(new Event('submit'))
    await flushPromises()
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].fields).toEqual([
      { source: 'mk_access_level', kit_field: { key: 'access_level', label: 'Access level' } },
      { source: 'mk_member_since', kit_field: { key: 'member_since', label: 'Member since' } },
    ])
  })
})
