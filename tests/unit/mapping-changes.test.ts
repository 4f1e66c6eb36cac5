/** The change between two mapping documents in an owner's words, as the History list and its restore preview say it. */
import { describe, expect, it } from 'vitest'
import type { Mappings, Rule } from '#shared/api.ts'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import { CHANGE_WORDS_MAX, changeWords, mappingChanges, NO_CHANGE } from '#shared/mapping-changes.ts'

/** The defaults, changed by `edit`. */
function changed(edit: (doc: Mappings) => void): Mappings {
  const doc = defaultMappings()
  edit(doc)
  return doc
}

const rule = (overrides: Partial<Rule> = {}): Rule => ({
  conditions: [{ field: 'subscription.plan', op: 'is', value: 'pro' }],
  add_tags: [],
  remove_tags: [],
  add_to_forms: [],
  add_to_sequences: [],
  unsubscribe: false,
  ...overrides,
})

describe('the change between two mapping documents in words', () => {
  it('says "no change" for the same document, and for ids Kit gave that the owner never sees', () => {
    expect(changeWords(defaultMappings(), defaultMappings())).toBe(NO_CHANGE)
    const withIds = changed((d) => {
      d.events['user.signed_up']!.add_tags = [{ id: 1001, name: 'new member' }]
    })
    expect(mappingChanges(defaultMappings(), withIds)).toEqual([])
  })

  it('names a tag added to an event and one taken out, by the event’s name', () => {
    const after = changed((d) => {
      d.events['user.signed_up']!.add_tags.push({ name: 'VIP' })
      d.events['subscription.started']!.add_tags = []
    })
    expect(mappingChanges(defaultMappings(), after)).toEqual([
      'added tag "VIP" to Member signs up',
      'removed tag "Active Member" from Subscription starts',
    ])
  })

  it('groups several tags of one list, and says what an event now removes or no longer removes', () => {
    const after = changed((d) => {
      d.events['user.updated'] = { ...emptyEventMapping(), add_tags: [{ name: 'A' }, { name: 'B' }, { name: 'C' }] }
      d.events['subscription.started']!.remove_tags = [{ name: 'Trial' }]
    })
    expect(mappingChanges(defaultMappings(), after)).toEqual([
      'added tags "A", "B" and "C" to Member updates their profile',
      'Subscription starts now removes tag "Trial"',
      'Subscription starts no longer removes tag "Cancelled"',
    ])
  })

  it('names forms and sequences by their Kit name, matched by id', () => {
    const before = changed((d) => {
      d.events['user.signed_up']!.add_to_forms = [{ id: 21, name: 'Newsletter' }]
    })
    const after = changed((d) => {
      d.events['user.signed_up']!.add_to_forms = [{ id: 21, name: 'Newsletter (renamed in Kit)' }]
      d.events['user.signed_up']!.add_to_sequences = [{ id: 31, name: 'Welcome series' }]
    })
    expect(mappingChanges(before, after)).toEqual(['added sequence "Welcome series" to Member signs up'])
    expect(mappingChanges(after, defaultMappings())).toEqual([
      'removed form "Newsletter (renamed in Kit)" from Member signs up',
      'removed sequence "Welcome series" from Member signs up',
    ])
  })

  it('says when an event starts or stops unsubscribing, or erasing the person', () => {
    const after = changed((d) => {
      d.events['subscription.canceled']!.unsubscribe = true
      d.events['user.deleted'] = { ...emptyEventMapping(), erase: true }
    })
    expect(mappingChanges(defaultMappings(), after)).toEqual([
      'Member account is deleted now erases the person from Kit',
      'Subscription is cancelled now unsubscribes',
    ])
    expect(mappingChanges(after, defaultMappings())).toEqual([
      'Member account is deleted no longer erases the person from Kit',
      'Subscription is cancelled no longer unsubscribes',
    ])
  })

  it('names a rule added or removed with its conditions and actions in words', () => {
    const withRule = changed((d) => {
      d.events['subscription.started']!.rules = [
        rule({ add_tags: [{ name: 'Pro' }], add_to_sequences: [{ id: 31, name: 'Pro onboarding' }] }),
        rule({ conditions: [], unsubscribe: true }),
      ]
    })
    expect(mappingChanges(defaultMappings(), withRule)).toEqual([
      'added a rule to Subscription starts: when plan is pro, add tag "Pro", add to sequence "Pro onboarding"',
      'added a rule to Subscription starts: always, unsubscribe',
    ])
    expect(mappingChanges(withRule, defaultMappings())).toEqual([
      'removed a rule from Subscription starts: when plan is pro, add tag "Pro", add to sequence "Pro onboarding"',
      'removed a rule from Subscription starts: always, unsubscribe',
    ])
  })

  it('says what changed in a rule whose conditions stayed, and when a rule whose actions stayed now applies', () => {
    const before = changed((d) => {
      d.events['subscription.started']!.rules = [
        rule({ add_tags: [{ name: 'Pro' }] }),
        rule({ conditions: [{ field: 'access.level', op: 'is_one_of', values: ['gold', 'silver'] }], add_tags: [{ name: 'Metal' }] }),
      ]
    })
    const after = changed((d) => {
      d.events['subscription.started']!.rules = [
        rule({ add_tags: [{ name: 'Pro' }, { name: 'Paying' }], unsubscribe: true }),
        rule({ conditions: [{ field: 'access.level', op: 'is', value: 'gold' }], add_tags: [{ name: 'Metal' }] }),
      ]
    })
    expect(mappingChanges(before, after)).toEqual([
      'changed the rule of Subscription starts when plan is pro: added tag "Paying", now unsubscribes',
      'changed when a rule of Subscription starts applies: when access level is gold (was when access level is one of gold, silver)',
    ])
  })

  it('says the rules were reordered when only their order changed', () => {
    const first = rule({ add_tags: [{ name: 'Pro' }] })
    const second = rule({ conditions: [], add_tags: [{ name: 'Everyone' }] })
    const before = changed((d) => {
      d.events['user.signed_up']!.rules = [first, second]
    })
    const after = changed((d) => {
      d.events['user.signed_up']!.rules = [second, first]
    })
    expect(mappingChanges(before, after)).toEqual(['reordered the rules of Member signs up'])
  })

  it('says when the member filter is set, changed or removed', () => {
    const pro = changed((d) => {
      d.filter = [{ field: 'subscription.plan', op: 'is', value: 'pro' }]
    })
    const proAndConsent = changed((d) => {
      d.filter = [
        { field: 'subscription.plan', op: 'is', value: 'pro' },
        { field: 'member.consent.marketing', op: 'is', value: 'true' },
      ]
    })
    expect(mappingChanges(defaultMappings(), pro)).toEqual(['set the filter: only members where plan is pro reach Kit'])
    expect(mappingChanges(pro, proAndConsent)).toEqual([
      'changed the filter: only members where plan is pro and agreed to marketing email is true reach Kit (was plan is pro)',
    ])
    expect(mappingChanges(pro, defaultMappings())).toEqual(['removed the filter: every member reaches Kit'])
  })

  it('names field mappings added, removed and sent to another Kit field', () => {
    const after = changed((d) => {
      d.fields = [
        { source: 'mk_subscription_plan', kit_field: { key: 'plan', label: 'Plan' } },
        { source: 'mk_access_level', kit_field: { key: 'level', label: 'Access level' } },
        { source: 'mk_country', kit_field: { key: 'country', label: 'Country' } },
      ]
    })
    expect(mappingChanges(defaultMappings(), after)).toEqual([
      'mk_subscription_plan now goes to Kit field "Plan" (was "Subscription plan")',
      'mk_access_level now goes to Kit field key level (was access_level)',
      'mapped mk_country to Kit field "Country"',
    ])
    expect(mappingChanges(after, defaultMappings())).toContain('stopped mapping mk_country to Kit field "Country"')
  })

  it('joins several changes with semicolons and counts those past the first few', () => {
    const two = changed((d) => {
      d.events['user.signed_up']!.add_tags.push({ name: 'VIP' })
      d.events['user.deleted'] = { ...emptyEventMapping(), unsubscribe: true }
    })
    expect(changeWords(defaultMappings(), two)).toBe('added tag "VIP" to Member signs up; Member account is deleted now unsubscribes')

    const many = changed((d) => {
      for (const [i, type] of (
        ['user.signed_up', 'user.updated', 'user.deleted', 'access.granted', 'access.revoked', 'member.snapshot'] as const
      ).entries()) {
        d.events[type] = { ...emptyEventMapping(), add_to_forms: [{ id: 100 + i, name: `Form ${i}` }] }
      }
    })
    const words = changeWords(defaultMappings(), many)
    const phrases = mappingChanges(defaultMappings(), many)
    expect(phrases.length).toBeGreaterThan(CHANGE_WORDS_MAX)
    expect(words.split('; ')).toHaveLength(CHANGE_WORDS_MAX)
    expect(words).toMatch(new RegExp(`; and ${phrases.length - (CHANGE_WORDS_MAX - 1)} more changes$`))
    expect(words.startsWith(phrases.slice(0, CHANGE_WORDS_MAX - 1).join('; '))).toBe(true)
  })

  it('reads an event type absent from one document as doing nothing', () => {
    const sparse: Mappings = { events: { 'user.signed_up': { ...emptyEventMapping(), add_tags: [{ name: 'New Member' }] } }, fields: [] }
    const full: Mappings = {
      events: { 'user.signed_up': { ...emptyEventMapping(), add_tags: [{ name: 'New Member' }] }, 'user.updated': emptyEventMapping() },
      fields: [],
    }
    expect(changeWords(sparse, full)).toBe(NO_CHANGE)
  })
})
