/**
 * The mapping editor from the keyboard: Enter in a field box, how the pickers rank and open, what
 * they offer for a name that cannot be kept, the "new" mark once Kit has the tag, and reaching Save.
 */
import { flushPromises, type DOMWrapper, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { emptyEventMapping } from '#shared/defaults.ts'
import { LIMITS } from '#shared/limits.ts'
import { api } from '../../ui/src/api/index.ts'
import { TAGS_REREAD_MS } from '../../ui/src/composables/useKitTagsFollow.ts'
import { matchRank, MatchRank, rankMatches } from '../../ui/src/lib/matching.ts'
import { aDelivery, someMappings } from './factories.ts'
import {
  answerWithDefaults,
  button,
  byLabel,
  hasButton,
  mountEditor,
  mountSection,
  openEvents,
  showSection,
  textOf,
  type Root,
} from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const card = (wrapper: VueWrapper, type: string) => wrapper.get(`article[aria-label$="(${type})"]`)
const chipTexts = (root: Root, label: string) => root.findAll(`ul.chips[aria-label^="${label}"] li > span:first-child`).map((s) => s.text())
/** The chips marked "new" (a tag Kit does not have yet). */
const markedNew = (root: Root, label: string) =>
  root
    .findAll(`ul.chips[aria-label^="${label}"] li`)
    .filter((li) => li.find('.chip-new').exists())
    .map((li) => li.get('span').text())
const optionsOf = (wrapper: VueWrapper, input: DOMWrapper<HTMLInputElement>) =>
  wrapper
    .get(`[id="${input.attributes('aria-controls')}"]`)
    .findAll('[role="option"]')
    .map((o) => o.text())
const highlighted = (wrapper: VueWrapper, input: DOMWrapper<HTMLInputElement>) => {
  const id = input.attributes('aria-activedescendant')
  return id ? wrapper.get(`[id="${id}"]`).text() : null
}

/**
 * Presses Enter in a text box as a browser does: the keydown goes to the box and, unless a handler
 * cancels it, the form is submitted implicitly (the browser's default action).
 */
async function pressEnter(input: DOMWrapper<HTMLInputElement>): Promise<void> {
  const event = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })
  const proceed = input.element.dispatchEvent(event)
  if (proceed && input.element.form) input.element.form.requestSubmit()
  await flushPromises()
}

let wrapper: VueWrapper | undefined

beforeEach(() => {
  vi.resetAllMocks()
  answerWithDefaults()
})
afterEach(() => wrapper?.unmount())

describe('Enter in a field-mapping box', () => {
  it('confirms that box only: nothing is saved and Discard stays for the other pending changes', async () => {
    wrapper = await mountEditor()
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    await showSection(wrapper, 'Fields')
    await button(wrapper, 'Add field mapping').trigger('click')
    const source = byLabel(wrapper, 'Member field 3')
    const kit = byLabel(wrapper, 'Kit field 3')
    await source.setValue('  mk_member_since ')
    await kit.setValue('Member since ')
    for (const box of [source, kit]) {
      await pressEnter(box)
      expect(api.saveMappings).not.toHaveBeenCalled()
      expect(wrapper.find('.savebar [role="alert"]').exists()).toBe(false)
      expect(hasButton(wrapper, 'Discard changes')).toBe(true)
      expect(textOf(wrapper.get('.savebar-status'))).toBe('Unsaved changes')
    }
    expect([source.element.value, kit.element.value]).toEqual(['mk_member_since', 'Member since'])

    await button(wrapper, 'Discard changes').trigger('click')
    expect(wrapper.findAll('.rows > li')).toHaveLength(2)
    await showSection(wrapper, 'Rules')
    await openEvents(wrapper, 'user.deleted')
    expect(byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').element.checked).toBe(false)
    expect(api.saveMappings).not.toHaveBeenCalled()
  })

  it('shows what is wrong with the confirmed box, and only with it', async () => {
    wrapper = await mountSection('Fields')
    await button(wrapper, 'Add field mapping').trigger('click')
    const kit = byLabel(wrapper, 'Kit field 3')
    await kit.trigger('focus')
    await pressEnter(kit)
    const row = wrapper.findAll('.rows > li')[2]!
    expect(row.findAll('[role="alert"]').map(textOf)).toEqual(['Choose a Kit field or type a label for a new one.'])
    expect(kit.attributes('aria-invalid')).toBe('true')
    expect(byLabel(wrapper, 'Member field 3').attributes('aria-invalid')).toBe('false')
    expect(wrapper.find('.savebar [role="alert"]').exists()).toBe(false)
  })

  it('takes an existing Kit field by its label when Enter confirms it', async () => {
    wrapper = await mountSection('Fields')
    await button(wrapper, 'Add field mapping').trigger('click')
    await byLabel(wrapper, 'Member field 3').setValue('mk_country')
    const kit = byLabel(wrapper, 'Kit field 3')
    await kit.setValue('subscription PLAN ')
    await pressEnter(kit)
    expect(kit.element.value).toBe('Subscription plan')
    expect(api.saveMappings).not.toHaveBeenCalled()
  })
})

describe('how a picker ranks what matches', () => {
  it('ranks an exact name, then a prefix, then a word prefix, then anywhere; the shorter name first within each, then Kit’s order', () => {
    expect(matchRank('VIP', ' vip')).toBe(MatchRank.Exact)
    expect(matchRank('VIP Gold', 'vi')).toBe(MatchRank.Prefix)
    expect(matchRank('Gold VIP', 'vi')).toBe(MatchRank.WordPrefix)
    expect(matchRank('Plan: gold-vip', 'vi')).toBe(MatchRank.WordPrefix)
    expect(matchRank('Envious', 'vi')).toBe(MatchRank.Substring)
    expect(matchRank('Newsletter', 'vi')).toBeNull()
    const tags = ['Envious', 'Gold VIP', 'VIP Gold', 'Newsletter', 'VIP', 'Vintage', 'Visitor'].map((name) => ({ name }))
    expect(rankMatches(tags, 'vip').map((t) => t.name)).toEqual(['VIP', 'VIP Gold', 'Gold VIP'])
    expect(rankMatches(tags, 'vi').map((t) => t.name)).toEqual(['VIP', 'Vintage', 'Visitor', 'VIP Gold', 'Gold VIP', 'Envious'])
  })

  it('picks "VIP" for vi + Enter although Kit lists "VIP Gold" first', async () => {
    vi.mocked(api.listTags).mockResolvedValue([
      { id: 7, name: 'VIP Gold' },
      { id: 8, name: 'Newsletter' },
      { id: 9, name: 'VIP' },
    ])
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    await input.setValue('vi')
    expect(optionsOf(wrapper, input)).toEqual(['VIP', 'VIP Gold', 'Create tag “vi” in Kit on first use'])
    expect(highlighted(wrapper, input)).toBe('VIP')
    await pressEnter(input)
    expect(chipTexts(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['VIP'])
  })

  it('puts a word prefix before a match inside a word', async () => {
    vi.mocked(api.listTags).mockResolvedValue([
      { id: 7, name: 'Envious' },
      { id: 8, name: 'Gold VIP' },
    ])
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Remove tags for user.updated')
    await input.setValue('vi')
    expect(optionsOf(wrapper, input)).toEqual(['Gold VIP', 'Envious', 'Create tag “vi” in Kit on first use'])
    await pressEnter(input)
    expect(chipTexts(card(wrapper, 'user.updated'), 'Remove tags')).toEqual(['Gold VIP'])
  })
})

describe('when a picker opens its list', () => {
  it('stays closed on focus, opens on ArrowDown on the first suggestion, and on typing', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add to forms for user.updated')
    await input.trigger('focus')
    await input.trigger('click')
    expect(input.attributes('aria-expanded')).toBe('false')
    expect(highlighted(wrapper, input)).toBeNull()

    await input.trigger('keydown', { key: 'ArrowDown' })
    expect(input.attributes('aria-expanded')).toBe('true')
    expect(highlighted(wrapper, input)).toBe('Newsletter sign-up')
    await input.trigger('keydown', { key: 'Escape' })
    expect(input.attributes('aria-expanded')).toBe('false')

    await input.setValue('news')
    expect(input.attributes('aria-expanded')).toBe('true')
    expect(highlighted(wrapper, input)).toBe('Newsletter sign-up')
  })
})

describe('a tag name that cannot be kept', () => {
  it('is never offered as "Create tag": the picker says why instead', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add tags for user.updated')
    const tooLong = 'x'.repeat(LIMITS.tagNameMax + 1)
    await input.setValue(tooLong)
    expect(optionsOf(wrapper, input)).toEqual([])
    expect(input.attributes('aria-expanded')).toBe('false')
    expect(textOf(card(wrapper, 'user.updated').get('.picker [role="alert"]'))).toBe(
      `Tag names can be at most ${LIMITS.tagNameMax} characters.`,
    )
    expect(input.attributes('aria-invalid')).toBe('true')
    await pressEnter(input)
    expect(chipTexts(card(wrapper, 'user.updated'), 'Add tags')).toEqual([])
    expect(api.saveMappings).not.toHaveBeenCalled()

    await input.setValue('x'.repeat(LIMITS.tagNameMax))
    expect(optionsOf(wrapper, input)).toEqual([`Create tag “${'x'.repeat(LIMITS.tagNameMax)}” in Kit on first use`])
    expect(input.attributes('aria-invalid')).toBe('false')
  })
})

describe('the "new" mark on a tag Kit does not have yet', () => {
  it('goes once an event has created the tag in Kit', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => (m.events['user.updated'] = { ...emptyEventMapping(), add_tags: [{ name: 'Founders' }] })),
    )
    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [], next_cursor: null })
    wrapper = await mountEditor()
    expect(markedNew(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['Founders'])
    const tagReads = vi.mocked(api.listTags).mock.calls.length

    // An event uses the tag: Kit creates it, and Activity shows the delivery that added it; back in Rules, the mark is gone.
    vi.mocked(api.listTags).mockResolvedValue([
      { id: 1, name: 'New Member' },
      { id: 3, name: 'VIP' },
      { id: 44, name: 'Founders' },
    ])
    vi.mocked(api.listDeliveries).mockResolvedValue({
      items: [aDelivery({ event_type: 'user.updated', steps: [{ action: 'tag.added', target: 'Founders', detail: null }] })],
      next_cursor: null,
    })
    await showSection(wrapper, 'Activity')
    await showSection(wrapper, 'Rules')
    await openEvents(wrapper, 'user.updated')

    expect(vi.mocked(api.listTags).mock.calls.length).toBe(tagReads + 1)
    expect(chipTexts(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['Founders'])
    expect(markedNew(card(wrapper, 'user.updated'), 'Add tags')).toEqual([])
  })

  it('reads Kit’s tags once more after the server’s short cache when the first read still lacks the tag', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      vi.mocked(api.getMappings).mockResolvedValue(
        someMappings((m) => (m.events['user.updated'] = { ...emptyEventMapping(), add_tags: [{ name: 'Founders' }] })),
      )
      vi.mocked(api.listDeliveries).mockResolvedValue({ items: [], next_cursor: null })
      wrapper = await mountEditor()
      vi.mocked(api.listDeliveries).mockResolvedValue({
        items: [aDelivery({ steps: [{ action: 'tag.added', target: 'founders', detail: null }] })],
        next_cursor: null,
      })
      await showSection(wrapper, 'Activity')
      await showSection(wrapper, 'Rules')
      await openEvents(wrapper, 'user.updated')
      expect(markedNew(card(wrapper, 'user.updated'), 'Add tags')).toEqual(['Founders'])

      vi.mocked(api.listTags).mockResolvedValue([{ id: 44, name: 'Founders' }])
      await vi.advanceTimersByTimeAsync(TAGS_REREAD_MS)
      await flushPromises()
      expect(markedNew(card(wrapper, 'user.updated'), 'Add tags')).toEqual([])
    } finally {
      vi.useRealTimers()
    }
  })

  it('does not read Kit’s tags again for deliveries about tags Kit already had', async () => {
    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [], next_cursor: null })
    wrapper = await mountEditor()
    const tagReads = vi.mocked(api.listTags).mock.calls.length
    vi.mocked(api.listDeliveries).mockResolvedValue({
      items: [aDelivery({ steps: [{ action: 'tag.added', target: 'New Member', detail: null }] })],
      next_cursor: null,
    })
    await showSection(wrapper, 'Activity')
    await showSection(wrapper, 'Rules')
    expect(vi.mocked(api.listTags).mock.calls.length).toBe(tagReads)
  })
})

describe('reaching Save from the keyboard', () => {
  it('saves with Ctrl+S from anywhere in the panel, and keeps the browser from saving the page', async () => {
    wrapper = await mountEditor()
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    const input = byLabel(wrapper, 'Add tags for user.signed_up')
    const event = new KeyboardEvent('keydown', { key: 's', ctrlKey: true, bubbles: true, cancelable: true })
    input.element.dispatchEvent(event)
    await flushPromises()
    expect(event.defaultPrevented).toBe(true)
    expect(api.saveMappings).toHaveBeenCalledTimes(1)
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].events['user.deleted']!.unsubscribe).toBe(true)
    expect(textOf(wrapper.get('.savebar-status'))).toBe('All changes saved')
    expect(document.activeElement).toBe(wrapper.get('.savebar-status').element)
  })

  it('offers a skip link to Save while there are unsaved changes', async () => {
    wrapper = await mountEditor()
    const form = wrapper.get('form.mappings-form')
    expect(form.find('a.skip-link').exists()).toBe(false)
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    const link = form.get('a.skip-link')
    expect(form.element.querySelector('a, button, input')).toBe(link.element)
    expect(textOf(link)).toMatch(/^Skip to Save mappings \(or press (Ctrl\+S|⌘S)\)$/)
    await link.trigger('click')
    await flushPromises()
    expect(document.activeElement).toBe(button(wrapper, 'Save mappings').element)
    expect(api.saveMappings).not.toHaveBeenCalled()
  })
})
