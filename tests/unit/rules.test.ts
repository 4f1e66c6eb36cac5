/** The condition language, rules joined per event, and the member filter in the planner, as pure cases. */
import { describe, expect, it } from 'vitest'
import type { EventMapping, Mappings, Rule } from '#shared/api.ts'
import { conditionHolds, conditionProblem, conditionsWords, type Condition, type ConditionSubject } from '#shared/conditions.ts'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import type { MemberEvent } from '../../server/core/envelope.ts'
import { plan, type SendPlan } from '../../server/core/planner.ts'
import { applyRules, matchingRules } from '../../server/core/rules.ts'

const subject = (over: Partial<ConditionSubject> = {}): ConditionSubject => ({
  member: { email: 'Ada@Example.COM', fields: { mk_plan: 'Gold', mk_empty: '' }, consent: { marketing: true } },
  subscription: { plan: 'pro-annual', status: 'active' },
  access: { level: 'gold' },
  ...over,
})

const c = (field: string, op: Condition['op'], value?: string | string[]): Condition =>
  Array.isArray(value) ? { field, op, values: value } : value === undefined ? { field, op } : { field, op, value }

describe('conditions', () => {
  it.each([
    [c('subscription.plan', 'is', 'Pro-Annual'), true],
    [c('subscription.plan', 'is_not', 'pro-monthly'), true],
    [c('subscription.plan', 'is_one_of', ['pro-monthly', ' pro-annual ']), true],
    [c('subscription.plan', 'is_not_one_of', ['pro-annual']), false],
    [c('subscription.status', 'is', 'active'), true],
    [c('access.level', 'starts_with', 'go'), true],
    [c('member.fields.mk_plan', 'contains', 'OL'), true],
    [c('member.fields.mk_empty', 'is_empty'), true],
    [c('member.fields.mk_missing', 'is_set'), false],
    [c('member.fields.mk_missing', 'is_not', 'x'), false],
    [c('member.consent.marketing', 'is', 'true'), true],
    [c('member.email_domain', 'ends_with', 'example.com'), true],
    [c('member.email_domain', 'is', 'test.example.com'), false],
  ])('%j holds: %s', (condition, holds) => {
    expect(conditionHolds(condition, subject())).toBe(holds)
  })

  it('reads an event without a subscription as empty for the subscription fields', () => {
    expect(conditionHolds(c('subscription.plan', 'is_empty'), subject({ subscription: null }))).toBe(true)
    expect(conditionHolds(c('member.consent.marketing', 'is_set'), subject({ member: { email: 'a@b.c' } }))).toBe(false)
  })

  it('names what is wrong precisely', () => {
    expect(conditionProblem(c('member.plan', 'is', 'x'), 'filter[0]')).toMatch(/filter\[0\]\.field "member\.plan" is not a field/)
    expect(conditionProblem(c('subscription.plan', 'is_one_of', []), 'r')).toMatch(/r\.values must list at least one value/)
    expect(conditionProblem(c('subscription.plan', 'is'), 'r')).toMatch(/r\.value is required for is/)
    expect(conditionProblem(c('subscription.plan', 'is_set', 'x'), 'r')).toMatch(/takes no value/)
    expect(conditionProblem(c('member.consent.marketing', 'is', 'yes'), 'r')).toMatch(/"true" or "false"/)
    expect(conditionProblem(c('member.fields.mk_plan', 'contains', 'g'), 'r')).toBeNull()
  })

  it('reads in words', () => {
    expect(conditionsWords([c('subscription.plan', 'is', 'pro-annual'), c('access.level', 'is_one_of', ['gold', 'silver'])])).toBe(
      'plan is pro-annual and access level is one of gold, silver',
    )
  })
})

const rule = (conditions: Condition[], actions: Partial<Rule>): Rule => ({ ...emptyEventMapping(), conditions, ...actions })

describe('rules', () => {
  const mapping: EventMapping = {
    ...emptyEventMapping(),
    add_tags: [{ name: 'Member' }],
    rules: [
      rule([c('subscription.plan', 'is', 'pro-annual')], { add_tags: [{ name: 'Annual' }] }),
      rule([c('subscription.plan', 'is', 'pro-monthly')], { add_tags: [{ name: 'Monthly' }] }),
      rule([c('access.level', 'is', 'gold')], {
        remove_tags: [{ name: 'annual' }, { name: 'Trial' }],
        add_to_sequences: [{ id: 3, name: 'Gold' }],
      }),
    ],
  }

  it('applies every matching rule after the own actions, an add winning over a remove', () => {
    expect(matchingRules(mapping, subject())).toEqual([0, 2])
    const applied = applyRules(mapping, subject())
    expect(applied.add_tags.map((t) => t.name)).toEqual(['Member', 'Annual'])
    expect(applied.remove_tags.map((t) => t.name)).toEqual(['Trial'])
    expect(applied.add_to_sequences).toEqual([{ id: 3, name: 'Gold' }])
    expect(applied).not.toHaveProperty('rules')
  })

  it('leaves a mapping without rules as it was', () => {
    const plain = { ...emptyEventMapping(), add_tags: [{ name: 'X' }] }
    expect(applyRules(plain, subject())).toEqual(plain)
  })
})

describe('the planner with rules and a filter', () => {
  const event = (plan: string, email = 'ada@example.com'): MemberEvent => ({
    specversion: '1.0',
    id: 'evt_1',
    source: 'https://appstation.example/c',
    type: 'subscription.started',
    communityid: 'c_1',
    data: { member: { id: 'm_1', email }, subscription: { id: 's_1', plan } },
  })
  const mappings = (): Mappings => {
    const m = defaultMappings()
    m.events['subscription.started'] = {
      ...m.events['subscription.started']!,
      rules: [rule([c('subscription.plan', 'is', 'pro-annual')], { add_tags: [{ name: 'Annual' }] })],
    }
    return m
  }
  const run = (e: MemberEvent, m: Mappings) =>
    plan({ event: e, memberId: 'm_1', eventTime: 1, eventId: e.id, credential: 'connected', mappings: m, marks: new Map() })

  it('adds "Annual" only when the plan is pro-annual, and says which rule matched', () => {
    const annual = run(event('pro-annual'), mappings()) as SendPlan
    expect(annual.steps.filter((s) => s.kind === 'tag.add').map((s) => (s.kind === 'tag.add' ? s.tag.name : ''))).toEqual([
      'Active Member',
      'Annual',
    ])
    expect(annual.rules).toEqual([0])
    const monthly = run(event('pro-monthly'), mappings()) as SendPlan
    expect(monthly.steps.map((s) => (s.kind === 'tag.add' ? s.tag.name : s.kind))).not.toContain('Annual')
    expect(monthly.rules).toEqual([])
  })

  it('leaves out whom the filter does not match, before any Kit request', () => {
    const m = { ...mappings(), filter: [c('member.email_domain', 'is_not', 'test.example.com')] }
    expect(run(event('pro-annual', 'qa@test.example.com'), m)).toEqual({ kind: 'skip', reason: 'filtered_out', details: {} })
    expect(run(event('pro-annual'), m).kind).toBe('send')
  })
})
