import { flushPromises, type DOMWrapper, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { EVENT_TITLES } from '#shared/event-catalogue.ts'
import { EVENT_TYPES } from '#shared/events.ts'
import { api } from '../../ui/src/api/index.ts'
import { answerWithDefaults, button, byLabel, hasButton, mountEditor, showSection, textOf, type Root } from './mount.ts'
import { someMappings } from './factories.ts'

vi.mock('../../ui/src/api/index.ts')

const card = (wrapper: VueWrapper, type: string) => wrapper.get(`article[aria-label$="(${type})"]`)
const chips = (root: Root, label: string) => root.findAll(`ul.chips[aria-label^="${label}"] li > span:first-child`).map((s) => s.text())
const listboxOf = (wrapper: VueWrapper, input: DOMWrapper<HTMLInputElement>) => wrapper.get(`[id="${input.attributes('aria-controls')}"]`)
const optionsOf = (wrapper: VueWrapper, input: DOMWrapper<HTMLInputElement>) =>
  listboxOf(wrapper, input)
    .findAll('[role="option"]')
    .map((o) => o.text())
/** Each guard rail shown on the card: its message, then its fix buttons. */
const guardsOf = (wrapper: VueWrapper, type: string) =>
  card(wrapper, type)
    .findAll('.guard')
    .map((g) => [textOf(g.get('p')), ...g.findAll('button').map(textOf)].join(' | '))
const submit = async (wrapper: VueWrapper) => {
  await wrapper.get('form.mappings-form').trigger('submit')
  await flushPromises()
}

async function type(input: DOMWrapper<HTMLInputElement>, text: string): Promise<void> {
  await input.trigger('focus')
  await input.setValue(text)
}

let wrapper: VueWrapper | undefined

beforeEach(() => {
  vi.resetAllMocks()
  answerWithDefaults()
})
afterEach(() => wrapper?.unmount())

describe('the tag, form and sequence picker', () => {
  it('picks the highlighted match on Enter, not "Create tag"', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    await type(input, 'vi')
    expect(optionsOf(wrapper, input)).toEqual(['VIP', 'Create tag “vi” in Kit on first use'])
    expect(wrapper.get(`#${input.attributes('aria-activedescendant')}`).text()).toBe('VIP')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(chips(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['VIP'])
  })

  it('creates a typed name only when it is chosen explicitly', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    await type(input, 'vi')
    await input.trigger('keydown', { key: 'ArrowDown' })
    expect(wrapper.get(`#${input.attributes('aria-activedescendant')}`).text()).toBe('Create tag “vi” in Kit on first use')
    await input.trigger('keydown', { key: 'Enter' })
    expect(chips(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['vi'])

    await type(input, 'V')
    await listboxOf(wrapper, input).findAll('[role="option"]').at(-1)!.trigger('mousedown')
    expect(chips(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['vi', 'V'])
  })

  it('says how many more matches there are past the first ones', async () => {
    vi.mocked(api.listTags).mockResolvedValue(Array.from({ length: 13 }, (_, i) => ({ id: 100 + i, name: `Cohort ${i + 1}` })))
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    await type(input, 'cohort')
    expect(optionsOf(wrapper, input)).toHaveLength(9)
    const more = wrapper.get(`[id="${input.attributes('aria-describedby')}"]`)
    expect(textOf(more)).toBe('5 more — keep typing')
    await type(input, 'cohort 1')
    expect(optionsOf(wrapper, input)).toEqual(['Cohort 1', 'Cohort 10', 'Cohort 11', 'Cohort 12', 'Cohort 13'])
    expect(input.attributes('aria-describedby')).toBeUndefined()
  })

  it('closes its list on Tab and keeps the list out of the Tab order', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    await type(input, 'v')
    expect(input.attributes('aria-expanded')).toBe('true')
    await input.trigger('keydown', { key: 'Tab' })
    expect(input.attributes('aria-expanded')).toBe('false')
    expect(listboxOf(wrapper, input).attributes('tabindex')).toBe('-1')
    expect(chips(card(wrapper, 'user.updated'), 'Add tags')).toEqual([])
  })
})

describe('guard rails beside the event', () => {
  it('warns when an event that adds tags also unsubscribes, and fixes it in one click', async () => {
    wrapper = await mountEditor()
    const unsubscribe = byLabel(wrapper, 'Unsubscribe the member in Kit for subscription.canceled')
    await unsubscribe.setValue(true)
    expect(guardsOf(wrapper, 'subscription.canceled')).toEqual([
      expect.stringContaining('This event adds tags and then unsubscribes the member'),
    ])
    await button(wrapper, 'Do not unsubscribe for subscription.canceled').trigger('click')
    expect(unsubscribe.element.checked).toBe(false)
    expect(guardsOf(wrapper, 'subscription.canceled')).toEqual([])
  })

  it('lets a warning through on save', async () => {
    wrapper = await mountEditor()
    await byLabel(wrapper, 'Unsubscribe the member in Kit for subscription.canceled').setValue(true)
    await submit(wrapper)
    expect(api.saveMappings).toHaveBeenCalledTimes(1)
  })

  it('asks for confirmation before unsubscribing everyone who signs up', async () => {
    wrapper = await mountEditor()
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.signed_up').setValue(true)
    expect(guardsOf(wrapper, 'user.signed_up')[0]).toContain('Confirm before saving: Every person who joins would be unsubscribed')

    await submit(wrapper)
    expect(api.saveMappings).not.toHaveBeenCalled()
    expect(textOf(wrapper.get('.savebar [role="alert"]'))).toBe('Nothing was saved: fix the problems marked below first.')
    expect(document.activeElement?.textContent).toContain('Yes, unsubscribe new members')

    await button(wrapper, 'Yes, unsubscribe new members for user.signed_up').trigger('click')
    expect(guardsOf(wrapper, 'user.signed_up')).toEqual([expect.stringContaining('then unsubscribes the member')])
    await submit(wrapper)
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].events['user.signed_up']!.unsubscribe).toBe(true)
  })

  it('does not ask again for a confirmation the saved document already holds', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => (m.events['user.signed_up'] = { ...m.events['user.signed_up']!, add_tags: [], unsubscribe: true })),
    )
    wrapper = await mountEditor()
    expect(guardsOf(wrapper, 'user.signed_up')).toEqual([])
  })

  it('refuses the same tag in Add and Remove, with a fix for either side', async () => {
    wrapper = await mountEditor()
    const remove = byLabel(wrapper, 'Remove tags for user.signed_up')
    await type(remove, 'New Member')
    await remove.trigger('keydown', { key: 'Enter' })
    expect(guardsOf(wrapper, 'user.signed_up')).toEqual([
      'Cannot be saved: “New Member” is both added and removed by this event; keep it in one of the two lists. | Keep it in Add tags only for user.signed_up | Keep it in Remove tags only for user.signed_up',
    ])
    await submit(wrapper)
    expect(api.saveMappings).not.toHaveBeenCalled()

    await button(wrapper, 'Keep it in Remove tags only for user.signed_up').trigger('click')
    expect(chips(card(wrapper, 'user.signed_up'), 'Add tags')).toEqual([])
    expect(chips(card(wrapper, 'user.signed_up'), 'Remove tags')).toEqual(['New Member'])
    await submit(wrapper)
    expect(api.saveMappings).toHaveBeenCalledTimes(1)
  })

  it('refuses, where it is typed, a placeholder the event never carries', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.signed_up')
    await type(input, 'Plan {{subscription.plan}}')
    await input.trigger('keydown', { key: 'Enter' })
    expect(textOf(card(wrapper, 'user.signed_up').get('.picker [role="alert"]'))).toBe(
      '{{subscription.plan}} is never filled for user.signed_up, so the tag would never be applied; use {{member.fields.mk_…}}.',
    )
    expect(chips(card(wrapper, 'user.signed_up'), 'Add tags')).toEqual(['New Member'])
  })

  it('flags a saved tag whose placeholder the event never carries and removes it in one click', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => m.events['user.signed_up']!.add_tags.push({ name: 'Level {{access.level}}' })),
    )
    wrapper = await mountEditor()
    expect(guardsOf(wrapper, 'user.signed_up')[0]).toContain(
      'Cannot be saved: “Level {{access.level}}”: {{access.level}} is never filled for user.signed_up',
    )
    await button(wrapper, 'Remove “Level {{access.level}}” for user.signed_up').trigger('click')
    expect(chips(card(wrapper, 'user.signed_up'), 'Add tags')).toEqual(['New Member'])
    expect(document.activeElement).toBe(card(wrapper, 'user.signed_up').get('h3 > button').element)
  })

  it('warns about an archived form and an inactive sequence, and offers neither', async () => {
    vi.mocked(api.listSequences).mockResolvedValue([
      { id: 31, name: 'Welcome series', active: true },
      { id: 32, name: 'Paused series', active: false },
    ])
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => {
        m.events['user.signed_up']!.add_to_forms.push({ id: 22, name: 'Old form' })
        m.events['user.signed_up']!.add_to_sequences.push({ id: 32, name: 'Paused series' })
      }),
    )
    wrapper = await mountEditor()
    expect(guardsOf(wrapper, 'user.signed_up')).toEqual([
      'Check this: The form “Old form” is archived in Kit: members cannot be added to it. | Remove “Old form” for user.signed_up',
      'Check this: The sequence “Paused series” is inactive in Kit: Kit refuses to add members to it. | Remove “Paused series” for user.signed_up',
    ])
    const sequences = byLabel(wrapper, 'Add to sequences for user.updated')
    await sequences.trigger('focus')
    expect(optionsOf(wrapper, sequences)).toEqual(['Welcome series'])

    await button(wrapper, 'Remove “Paused series” for user.signed_up').trigger('click')
    expect(chips(card(wrapper, 'user.signed_up'), 'Add to sequences')).toEqual([])
    expect(guardsOf(wrapper, 'user.signed_up')).toHaveLength(1)
  })
})

describe('event cards and the save bar', () => {
  it('names each event in words, with what it does and its type beside them', async () => {
    wrapper = await mountEditor()
    const signup = card(wrapper, 'user.signed_up')
    expect(textOf(signup.get('h3 > button'))).toBe('Member signs up → add New Member')
    expect(signup.get('h3 code').text()).toBe('user.signed_up')
    expect(signup.attributes('aria-label')).toBe('Member signs up (user.signed_up)')
    for (const t of EVENT_TYPES) expect(textOf(card(wrapper, t).get('h3 > button')).startsWith(`${EVENT_TITLES[t]} → `)).toBe(true)
  })

  it('gives field mappings their own section, saved with the rules', async () => {
    wrapper = await mountEditor()
    expect(wrapper.findAll('h2').map(textOf)).not.toContain('Field mappings')
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    await showSection(wrapper, 'Fields')
    const fieldSection = wrapper.findAll('section').find((s) => textOf(s.get('h2')) === 'Field mappings')!
    expect(fieldSection.find('.rows').exists()).toBe(true)
    expect(wrapper.findAll('article').length).toBe(0)
    expect(textOf(wrapper.get('.savebar-status'))).toBe('Unsaved changes')
    await submit(wrapper)
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].events['user.deleted']!.unsubscribe).toBe(true)
  })

  it('shows Save and Discard in a floating bar only while there are unsaved changes', async () => {
    wrapper = await mountEditor()
    expect(hasButton(wrapper, 'Save mappings')).toBe(false)
    expect(hasButton(wrapper, 'Discard changes')).toBe(false)
    expect(wrapper.get('form.mappings-form').classes()).not.toContain('has-floating-bar')

    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    expect(wrapper.get('form.mappings-form').classes()).toContain('has-floating-bar')
    expect(hasButton(wrapper.get('.savebar'), 'Save mappings')).toBe(true)
    expect(hasButton(wrapper.get('.savebar'), 'Discard changes')).toBe(true)

    await submit(wrapper)
    expect(hasButton(wrapper, 'Save mappings')).toBe(false)
    expect(textOf(wrapper.get('.savebar-status'))).toBe('All changes saved')
  })
})
