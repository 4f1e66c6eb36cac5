/** The Rules section: events in one line, rules with keyboard-first condition editors, "Not used (N)", and the member filter. */
import { flushPromises, type DOMWrapper, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { emptyEventMapping } from '#shared/defaults.ts'
import { api } from '../../ui/src/api/index.ts'
import { someMappings } from './factories.ts'
import { answerWithDefaults, button, byLabel, mountEditor, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const card = (wrapper: VueWrapper, type: string) => wrapper.get(`article[aria-label$="(${type})"]`)
const line = (wrapper: VueWrapper, type: string) => textOf(card(wrapper, type).get('h3 > button'))
const RULE1 = 'of condition 1 in rule 1 for subscription.started'
const focused = () => document.activeElement as HTMLElement | null

/** Enter as a browser handles it: the keydown, then the form's implicit submission unless a handler cancelled it. */
async function pressEnter(input: DOMWrapper<Element>): Promise<void> {
  const event = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })
  const proceed = input.element.dispatchEvent(event)
  const form = (input.element as HTMLInputElement).form
  if (proceed && form) form.requestSubmit()
  await flushPromises()
}

/** Types into the focused text box, as the keyboard does. */
async function typeIntoFocused(wrapper: VueWrapper, text: string): Promise<DOMWrapper<HTMLInputElement>> {
  const box = wrapper.find<HTMLInputElement>(`[id="${focused()!.id}"]`)
  await box.setValue(text)
  return box
}

async function ctrlS(): Promise<void> {
  focused()!.dispatchEvent(new KeyboardEvent('keydown', { key: 's', ctrlKey: true, bubbles: true, cancelable: true }))
  await flushPromises()
}

let wrapper: VueWrapper | undefined

beforeEach(() => {
  vi.resetAllMocks()
  answerWithDefaults()
})
afterEach(() => wrapper?.unmount())

describe('a rule built from the keyboard', () => {
  it('adds "if plan is pro-annual → add Annual" to Subscription starts and saves it', async () => {
    wrapper = await mountEditor('subscription.started')
    await button(wrapper, 'Add rule for subscription.started').trigger('click')

    // The keyboard lands on the new rule's first field, already the plan, compared with "is".
    expect(focused()).toBe(byLabel(wrapper, `Field ${RULE1}`).element)
    expect(byLabel(wrapper, `Field ${RULE1}`).element.value).toBe('subscription.plan')
    expect(byLabel(wrapper, `Comparison ${RULE1}`).element.value).toBe('is')

    byLabel(wrapper, `Value ${RULE1}`).element.focus()
    const value = await typeIntoFocused(wrapper, 'pro-annual')
    await pressEnter(value)
    expect(api.saveMappings).not.toHaveBeenCalled()

    byLabel(wrapper, 'Add tags for subscription.started rule 1').element.focus()
    const tags = await typeIntoFocused(wrapper, 'Annual')
    await pressEnter(tags)
    expect(line(wrapper, 'subscription.started')).toBe(
      'Subscription starts → add Active Member, remove Cancelled; if plan is pro-annual → add Annual',
    )
    expect(textOf(card(wrapper, 'subscription.started').get('.rule-title'))).toBe('Rule 1 for subscription.started: if plan is pro-annual')

    await ctrlS()
    expect(api.saveMappings).toHaveBeenCalledTimes(1)
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].events['subscription.started']!.rules).toEqual([
      {
        conditions: [{ field: 'subscription.plan', op: 'is', value: 'pro-annual' }],
        add_tags: [{ name: 'Annual' }],
        remove_tags: [],
        add_to_forms: [],
        add_to_sequences: [],
        unsubscribe: false,
      },
    ])
  })

  it('turns a value into a list for "is one of", where Enter starts the next value', async () => {
    wrapper = await mountEditor('subscription.started')
    await button(wrapper, 'Add rule for subscription.started').trigger('click')
    await byLabel(wrapper, `Value ${RULE1}`).setValue('pro-annual')
    await byLabel(wrapper, `Comparison ${RULE1}`).setValue('is_one_of')

    const first = byLabel(wrapper, `Value 1 ${RULE1}`)
    expect(first.element.value).toBe('pro-annual')
    first.element.focus()
    await pressEnter(first)
    expect(focused()).toBe(byLabel(wrapper, `Value 2 ${RULE1}`).element)
    await typeIntoFocused(wrapper, 'pro-monthly')
    expect(textOf(card(wrapper, 'subscription.started').get('.rule-title'))).toContain('if plan is one of pro-annual, pro-monthly')

    await byLabel(wrapper, `Comparison ${RULE1}`).setValue('is_set')
    expect(card(wrapper, 'subscription.started').find('[data-condition="0"] input').exists()).toBe(false)
    expect(textOf(card(wrapper, 'subscription.started').get('.rule-title'))).toContain('if plan is set')
  })

  it('offers yes or no for agreeing to marketing email, and the member fields the mappings copy', async () => {
    wrapper = await mountEditor('subscription.started')
    await button(wrapper, 'Add rule for subscription.started').trigger('click')
    const field = byLabel(wrapper, `Field ${RULE1}`)
    expect(field.findAll('optgroup[label="Member fields"] option').map((o) => o.text())).toContain('mk_access_level')
    await field.setValue('member.consent.marketing')
    const value = byLabel(wrapper, `Value ${RULE1}`)
    expect(value.element.tagName).toBe('SELECT')
    expect(value.findAll('option').map((o) => [o.attributes('value'), o.text()])).toEqual([
      ['true', 'yes'],
      ['false', 'no'],
    ])
    await value.setValue('false')
    expect(textOf(card(wrapper, 'subscription.started').get('.rule-title'))).toContain('if agreed to marketing email is false')
  })
})

describe('what is wrong with a condition', () => {
  it('says so once the box is confirmed, with a one-click fix, and blocks the save', async () => {
    wrapper = await mountEditor('subscription.started')
    await button(wrapper, 'Add rule for subscription.started').trigger('click')
    const value = byLabel(wrapper, `Value ${RULE1}`)
    expect(card(wrapper, 'subscription.started').find('.condition-problem').exists()).toBe(false)
    await pressEnter(value)
    expect(textOf(card(wrapper, 'subscription.started').get('.condition-problem [role="alert"]'))).toBe('Type the value to compare with.')
    expect(value.attributes('aria-invalid')).toBe('true')
    expect(line(wrapper, 'subscription.started')).toBe('Subscription starts → add Active Member, remove Cancelled; if plan is → nothing')

    await ctrlS()
    expect(api.saveMappings).not.toHaveBeenCalled()
    expect(focused()).toBe(value.element)

    await button(wrapper, `Remove this condition ${RULE1}`).trigger('click')
    expect(card(wrapper, 'subscription.started').find('.condition-problem').exists()).toBe(false)
    expect(textOf(card(wrapper, 'subscription.started').get('.rule-title'))).toContain('always')
  })

  it('removes the empty value from a list in one click', async () => {
    wrapper = await mountEditor('subscription.started')
    await button(wrapper, 'Add rule for subscription.started').trigger('click')
    await byLabel(wrapper, `Value ${RULE1}`).setValue('gold')
    await byLabel(wrapper, `Comparison ${RULE1}`).setValue('is_one_of')
    await button(wrapper, `Add value to condition 1 in rule 1 for subscription.started`).trigger('click')
    const blank = byLabel(wrapper, `Value 2 ${RULE1}`)
    expect(focused()).toBe(blank.element)
    await blank.trigger('blur')
    expect(textOf(card(wrapper, 'subscription.started').get('.condition-problem [role="alert"]'))).toBe('A value in the list is empty.')
    expect(blank.attributes('aria-invalid')).toBe('true')

    await button(wrapper, `Remove the empty value ${RULE1}`).trigger('click')
    expect(card(wrapper, 'subscription.started').findAll('[data-condition="0"] .value-item')).toHaveLength(1)
    expect(card(wrapper, 'subscription.started').find('.condition-problem').exists()).toBe(false)
  })

  it('opens a closed event whose rule stops the save, and takes the keyboard there', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => {
        m.events['user.updated'] = {
          ...emptyEventMapping(),
          rules: [{ ...emptyEventMapping(), conditions: [{ field: 'member.fields.mk_tier', op: 'is', value: 'gold' }] }],
        }
      }),
    )
    wrapper = await mountEditor()
    const value = byLabel(wrapper, 'Value of condition 1 in rule 1 for user.updated')
    await value.setValue('')
    await card(wrapper, 'user.updated').get('h3 > button').trigger('click')
    expect(card(wrapper, 'user.updated').find('.event-body').exists()).toBe(false)
    expect(textOf(card(wrapper, 'user.updated').get('h3'))).toContain('Needs a fix')

    await wrapper.get('form.mappings-form').trigger('submit')
    await flushPromises()
    expect(api.saveMappings).not.toHaveBeenCalled()
    expect(focused()).toBe(byLabel(wrapper, 'Value of condition 1 in rule 1 for user.updated').element)
  })
})

describe('rules in order', () => {
  it('moves a rule down and up, and deletes one, keeping the keyboard on the rule', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => {
        m.events['subscription.started']!.rules = [
          { ...emptyEventMapping(), conditions: [{ field: 'subscription.plan', op: 'is', value: 'a' }] },
          { ...emptyEventMapping(), conditions: [{ field: 'subscription.plan', op: 'is', value: 'b' }] },
        ]
      }),
    )
    wrapper = await mountEditor('subscription.started')
    const whens = () => card(wrapper!, 'subscription.started').findAll('.rule-when').map(textOf)
    expect(whens()).toEqual(['if plan is a', 'if plan is b'])

    await button(wrapper, 'Move down rule 1 for subscription.started').trigger('click')
    expect(whens()).toEqual(['if plan is b', 'if plan is a'])
    // Rule 2 cannot move further down: the keyboard is on its Move up.
    expect(focused()).toBe(button(wrapper, 'Move up rule 2 for subscription.started').element)

    await button(wrapper, 'Move up rule 2 for subscription.started').trigger('click')
    expect(whens()).toEqual(['if plan is a', 'if plan is b'])

    await button(wrapper, 'Delete rule rule 1 for subscription.started').trigger('click')
    expect(whens()).toEqual(['if plan is b'])
    expect(focused()?.textContent).toContain('Rule 1')
  })
})

describe('events that do nothing', () => {
  it('are grouped under "Not used (N)", closed until asked', async () => {
    wrapper = await mountEditor('none')
    const notUsed = wrapper.get('.not-used > h3 > button')
    expect(textOf(notUsed)).toBe('Not used (3)')
    expect(notUsed.attributes('aria-expanded')).toBe('true')
    await notUsed.trigger('click')
    expect(notUsed.attributes('aria-expanded')).toBe('false')
    expect(wrapper.find('article[aria-label$="(user.updated)"]').exists()).toBe(false)
    const used = wrapper.findAll('article.event').map((a) => a.attributes('aria-label'))
    expect(used).toEqual([
      'Member signs up (user.signed_up)',
      'Subscription starts (subscription.started)',
      'Subscription is cancelled (subscription.canceled)',
      'Access level is granted (access.granted)',
      'Access level is revoked (access.revoked)',
    ])
    expect(wrapper.findAll('article.event h3 > button').every((b) => b.attributes('aria-expanded') === 'false')).toBe(true)

    await notUsed.trigger('click')
    expect(notUsed.attributes('aria-controls')).toBeDefined()
    expect(wrapper.get(`[id="${notUsed.attributes('aria-controls')}"]`).findAll('article.event')).toHaveLength(3)
    expect(line(wrapper, 'member.snapshot')).toBe('Existing member is brought over (initial sync) → nothing')
  })

  it('leave the group once a saved mapping uses them, not while they are being edited', async () => {
    wrapper = await mountEditor('user.updated')
    await button(wrapper, 'Add rule for user.updated').trigger('click')
    await byLabel(wrapper, 'Value of condition 1 in rule 1 for user.updated').setValue('example.com')
    expect(textOf(wrapper.get('.not-used > h3 > button'))).toBe('Not used (3)')
    await wrapper.get('form.mappings-form').trigger('submit')
    await flushPromises()
    expect(api.saveMappings).toHaveBeenCalledTimes(1)
    expect(textOf(wrapper.get('.not-used > h3 > button'))).toBe('Not used (2)')
    expect(line(wrapper, 'user.updated')).toBe('Member updates their profile → if email domain is example.com → nothing')
  })
})

describe('the member filter', () => {
  it('says who reaches Kit and that a member who stops matching is left as they are', async () => {
    wrapper = await mountEditor('none')
    const filter = wrapper.findAll('section').find((s) => textOf(s.get('h2')) === 'Member filter — only these members reach Kit')!
    expect(textOf(filter)).toContain('A member who stops matching is left as they are in Kit.')
    expect(textOf(filter.get('.filter-summary'))).toBe('Every member reaches Kit.')

    await button(filter, 'Add condition in the member filter').trigger('click')
    const field = byLabel(filter, 'Field of condition 1 in the member filter')
    expect(focused()).toBe(field.element)
    expect(field.findAll('option').map((o) => o.text())).toEqual(expect.arrayContaining(['plan', 'access level', 'email domain']))
    await byLabel(filter, 'Comparison of condition 1 in the member filter').setValue('ends_with')
    await byLabel(filter, 'Value of condition 1 in the member filter').setValue('example.com')
    expect(textOf(filter.get('.filter-summary'))).toBe('Only these members reach Kit: email domain ends with example.com.')

    await wrapper.get('form.mappings-form').trigger('submit')
    await flushPromises()
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].filter).toEqual([
      { field: 'member.email_domain', op: 'ends_with', value: 'example.com' },
    ])
  })
})
