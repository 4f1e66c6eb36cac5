/** Rules in words, which events are not used, the fields a condition offers, and the checks the editor shares with the server. */
import { describe, expect, it } from 'vitest'
import type { EventMapping, Mappings, Rule } from '#shared/api.ts'
import { emptyEventMapping } from '#shared/defaults.ts'
import { EVENT_TYPES } from '#shared/events.ts'
import { completeMappings, guardRails, sameMappings, slotForServerMessage, validateMappings } from '../../ui/src/lib/mappings.ts'
import {
  actionsWords,
  conditionFieldChoices,
  eventSummary,
  filterWords,
  firstCondition,
  isUnused,
  mappingWords,
  namesWords,
} from '../../ui/src/lib/rules.ts'
import { someMappings } from './factories.ts'

const mapping = (over: Partial<EventMapping> = {}): EventMapping => ({ ...emptyEventMapping(), ...over })
const rule = (conditions: Rule['conditions'], over: Partial<Rule> = {}): Rule => ({ ...emptyEventMapping(), conditions, ...over })
const annual = rule([{ field: 'subscription.plan', op: 'is', value: 'pro-annual' }], { add_tags: [{ name: 'Annual' }] })

describe('an event in one line', () => {
  it('reads the actions, then each rule as "if … → …"', () => {
    expect(eventSummary('user.signed_up', mapping({ add_tags: [{ name: 'New Member' }], rules: [annual] }))).toBe(
      'Member signs up → add New Member; if plan is pro-annual → add Annual',
    )
  })

  it('names every kind of action, lists in words, and says when nothing happens', () => {
    const m = mapping({
      add_tags: [{ name: 'Active Member' }, { name: 'VIP' }],
      remove_tags: [{ name: 'Cancelled' }],
      add_to_forms: [{ id: 1, name: 'Newsletter' }],
      add_to_sequences: [
        { id: 2, name: 'Welcome' },
        { id: 3, name: 'Onboarding' },
      ],
      unsubscribe: true,
    })
    expect(actionsWords(m)).toBe(
      'add Active Member and VIP, remove Cancelled, add to form Newsletter, start sequences Welcome and Onboarding, unsubscribe',
    )
    expect(actionsWords(mapping({ erase: true }))).toBe('erase from Kit')
    expect(mappingWords(mapping())).toBe('nothing')
    expect(eventSummary('subscription.started', mapping({ rules: [annual] }))).toBe(
      'Subscription starts → if plan is pro-annual → add Annual',
    )
  })

  it('stays short: at most three names of a list, then how many more', () => {
    expect(namesWords(['A', 'B', 'C'])).toBe('A, B and C')
    expect(namesWords(['A', 'B', 'C', 'D', 'E'])).toBe('A, B, C and 2 more')
    expect(namesWords([])).toBe('')
  })

  it('reads a rule without conditions as "always", one without actions as "nothing", and lists with "is one of"', () => {
    const rules = [
      rule([], { remove_tags: [{ name: 'Trial' }] }),
      rule([
        { field: 'access.level', op: 'is_one_of', values: ['gold', 'silver'] },
        { field: 'member.fields.mk_country', op: 'is_set' },
      ]),
    ]
    expect(mappingWords(mapping({ rules }))).toBe(
      'always → remove Trial; if access level is one of gold, silver and mk_country is set → nothing',
    )
  })

  it('counts an event as not used only when it has no action and no rule', () => {
    expect(isUnused(undefined)).toBe(true)
    expect(isUnused(mapping())).toBe(true)
    expect(isUnused(mapping({ rules: [] }))).toBe(true)
    expect(isUnused(mapping({ unsubscribe: true }))).toBe(false)
    expect(isUnused(mapping({ rules: [rule([])] }))).toBe(false)
    const defaults = completeMappings(someMappings())
    expect(EVENT_TYPES.filter((t) => isUnused(defaults.events[t]))).toEqual(['user.updated', 'user.deleted', 'member.snapshot'])
  })

  it('reads the member filter', () => {
    expect(filterWords(undefined)).toBe('Every member reaches Kit.')
    expect(filterWords([{ field: 'member.consent.marketing', op: 'is', value: 'true' }])).toBe(
      'Only these members reach Kit: agreed to marketing email is true.',
    )
  })
})

describe('what a condition offers', () => {
  it('offers the fields the event carries, then the member fields of the catalogue and of the field mappings', () => {
    const doc = someMappings((m) => m.fields.push({ source: 'mk_tier', kit_field: { key: 'tier', label: 'Tier' } }))
    const signup = conditionFieldChoices('user.signed_up', doc)
    expect(signup.fixed.map((f) => f.value)).toEqual(['member.consent.marketing', 'member.email_domain'])
    expect(signup.member.map((f) => f.label)).toContain('mk_tier')
    expect(signup.member.find((f) => f.label === 'mk_tier')!.value).toBe('member.fields.mk_tier')
    expect(conditionFieldChoices('subscription.started', doc).fixed.map((f) => f.label)).toEqual([
      'plan',
      'subscription status',
      'agreed to marketing email',
      'email domain',
    ])
    expect(conditionFieldChoices(null, doc).fixed).toHaveLength(5)
  })

  it('keeps a saved condition’s field among the choices, even one the event does not carry', () => {
    expect(conditionFieldChoices('user.signed_up', someMappings(), 'access.level').fixed.map((f) => f.value)).toContain('access.level')
    expect(conditionFieldChoices('user.signed_up', someMappings(), 'member.fields.mk_rare').member.map((f) => f.value)).toContain(
      'member.fields.mk_rare',
    )
  })

  it('starts a new rule on what the event is most about', () => {
    expect(firstCondition('subscription.started')).toEqual({ field: 'subscription.plan', op: 'is', value: '' })
    expect(firstCondition('access.granted').field).toBe('access.level')
    expect(firstCondition('user.signed_up').field).toBe('member.email_domain')
  })
})

describe('rules and the filter in the draft', () => {
  const withRules = (edit: (m: Mappings) => void = () => {}) =>
    completeMappings(
      someMappings((m) => {
        m.events['subscription.started']!.rules = [structuredClone(annual)]
        m.filter = [{ field: 'member.email_domain', op: 'ends_with', value: 'example.com' }]
        edit(m)
      }),
    )

  it('keeps rules, the filter and erase in the draft, and compares them', () => {
    const doc = withRules((m) => (m.events['user.deleted'] = { ...emptyEventMapping(), erase: true }))
    expect(doc.events['subscription.started']!.rules).toEqual([annual])
    expect(doc.filter).toEqual([{ field: 'member.email_domain', op: 'ends_with', value: 'example.com' }])
    expect(doc.events['user.deleted']!.erase).toBe(true)
    const other = withRules()
    other.events['subscription.started']!.rules![0]!.conditions[0]!.value = 'pro-monthly'
    expect(sameMappings(doc, other)).toBe(false)
    // No rules and an empty list of rules are the same document.
    expect(
      sameMappings(
        someMappings(),
        someMappings((m) => (m.events['user.signed_up']!.rules = [])),
      ),
    ).toBe(true)
  })

  it('shows a condition’s problem in the owner’s words, decided as the server decides', () => {
    const doc = withRules((m) => {
      m.events['subscription.started']!.rules![0]!.conditions = [
        { field: 'subscription.plan', op: 'is', value: ' ' },
        { field: 'access.level', op: 'is_one_of', values: ['gold', ''] },
      ]
      m.filter = [{ field: 'member.fields.Country', op: 'is', value: 'FR' }]
    })
    expect(validateMappings(doc)).toEqual({
      'events.subscription.started.rules.0.conditions.0': 'Type the value to compare with.',
      'events.subscription.started.rules.0.conditions.1': 'A value in the list is empty.',
      'filter.0': 'Choose a field: member fields are mk_ followed by lower-case letters, digits or _ (at most 60).',
    })
  })

  it('checks a rule’s tags like the event’s own', () => {
    const doc = withRules((m) => m.events['subscription.started']!.rules![0]!.add_tags.push({ name: 'Hi {{member.email}}' }))
    expect(validateMappings(doc)['events.subscription.started.rules.0.add_tags']).toMatch(/not a known placeholder/)
  })

  it('points a server refusal at the rule part or filter condition it names', () => {
    expect(slotForServerMessage('events.subscription.started.rules[1].conditions[0].value is required for is')).toBe(
      'events.subscription.started.rules.1.conditions.0',
    )
    expect(slotForServerMessage('events.user.signed_up.rules[0].add_tags[2].name must not be blank')).toBe(
      'events.user.signed_up.rules.0.add_tags',
    )
    expect(slotForServerMessage('filter[3].value must be "true" or "false" for member.consent.marketing')).toBe('filter.3')
  })

  it('puts a rule’s guard rails on the rule, and refuses a tag two always-applying parts add and remove', () => {
    const doc = withRules((m) => {
      const started = m.events['subscription.started']!
      started.rules![0]!.remove_tags.push({ name: 'annual' })
      started.rules!.push(rule([], { remove_tags: [{ name: 'Active Member' }] }))
    })
    const guards = guardRails(doc, { forms: null, sequences: null }, { signupUnsubscribeConfirmed: false })
    expect(guards.map((g) => [g.rule, g.level, g.message])).toEqual([
      [0, 'error', '“annual” is both added and removed by this rule; keep it in one of the two lists.'],
      [
        1,
        'error',
        '“Active Member” is removed here and added by the event’s own actions; both always apply, so keep it in one of the two.',
      ],
    ])
  })
})
