/** The planner's consent rules and the gate Kit's state puts on forms and sequences, as pure cases. */
import { describe, expect, it } from 'vitest'
import type { Mappings } from '#shared/api.ts'
import { defaultMappings } from '#shared/defaults.ts'
import type { MemberEvent } from '../../server/core/envelope.ts'
import { gateByKitState, needsKitState, plan, type KitStep, type Plan, type PlanInput, type SendPlan } from '../../server/core/planner.ts'

const T = 1_700_000_000_000

const event = (type: string, consent?: { marketing: boolean; at?: string }): MemberEvent => ({
  specversion: '1.0',
  id: 'evt_1',
  source: 'https://appstation.example/communities/c_1',
  type,
  communityid: 'c_1',
  data: {
    member: { id: 'm_1', email: 'ada@example.com', first_name: 'Ada', ...(consent ? { consent } : {}) },
    ...(type.startsWith('subscription.') ? { subscription: { id: 's_1', plan: 'pro' } } : {}),
  },
})

function withLists(): Mappings {
  const m = defaultMappings()
  m.events['user.signed_up'] = {
    ...m.events['user.signed_up']!,
    add_to_forms: [{ id: 7, name: 'Newsletter' }],
    add_to_sequences: [{ id: 8, name: 'Welcome' }],
  }
  return m
}

const input = (e: MemberEvent, overrides: Partial<PlanInput> = {}): PlanInput => ({
  event: e,
  memberId: 'm_1',
  eventTime: T,
  eventId: e.id,
  credential: 'connected',
  mappings: withLists(),
  marks: new Map(),
  ...overrides,
})

function sent(p: Plan): SendPlan {
  if (p.kind !== 'send') throw new Error(`expected a send plan, got ${p.kind} ${p.reason}`)
  return p
}

const kinds = (steps: readonly KitStep[]) => steps.map((s) => s.kind)

describe('consent in the plan', () => {
  it('skips a member without consent whom Kit does not know, in the consent-only mode, before any request', () => {
    for (const consent of [undefined, { marketing: false }]) {
      const p = plan(input(event('user.signed_up', consent), { consentMode: 'marketing_consent', knownInKit: false }))
      expect(p).toEqual({ kind: 'skip', reason: 'no_consent', details: {} })
    }
  })

  it('creates a member who agreed, in the consent-only mode', () => {
    const p = sent(
      plan(input(event('user.signed_up', { marketing: true, at: '2026-12-07T10:00:00Z' }), { consentMode: 'marketing_consent' })),
    )
    expect(p.subscriber.createIfMissing).toBe(true)
    expect(p.consent).toEqual({ marketing: true, at: Date.parse('2026-12-07T10:00:00Z') })
  })

  it('still writes to a member Kit already knows, without creating, when a later event carries no consent', () => {
    const p = sent(plan(input(event('subscription.started'), { consentMode: 'marketing_consent', knownInKit: true })))
    expect(p.subscriber.createIfMissing).toBe(false)
    expect(kinds(p.steps)).toContain('tag.add')
  })

  it('turns a withdrawal into an unsubscribe, in every mode, with no form, sequence or creation', () => {
    for (const consentMode of ['all_members', 'marketing_consent'] as const) {
      const p = sent(plan(input(event('user.signed_up', { marketing: false }), { consentMode, knownInKit: true })))
      expect(kinds(p.steps)).toEqual(['tag.add', 'unsubscribe'])
      expect(p.subscriber.createIfMissing).toBe(false)
    }
  })

  it('unsubscribes on a withdrawal even when the event maps nothing', () => {
    const p = sent(
      plan(input(event('access.revoked', { marketing: false }), { mappings: { events: {}, fields: [] } as unknown as Mappings })),
    )
    expect(kinds(p.steps)).toEqual(['unsubscribe'])
  })

  it('every member may be created in the default mode, consent or not', () => {
    expect(sent(plan(input(event('user.signed_up')))).subscriber.createIfMissing).toBe(true)
  })
})

describe("Kit's state gates forms and sequences", () => {
  const steps = sent(plan(input(event('user.signed_up')))).steps
  const learnt = T

  it('lets everything through for an active or unconfirmed person, and when the state is unknown', () => {
    for (const kit of [{ state: 'active', learnedAt: learnt }, { state: 'inactive', learnedAt: learnt }, null]) {
      expect(gateByKitState(steps, kit, null)).toEqual({ steps, warning: null })
    }
    expect(needsKitState(steps)).toBe(true)
  })

  it.each([
    ['cancelled', 'kit_unsubscribed'],
    ['bounced', 'kit_bounced'],
    ['complained', 'kit_complained'],
  ] as const)('keeps only tags for a %s person and warns %s', (state, warning) => {
    const gated = gateByKitState([...steps, { kind: 'unsubscribe' }], { state, learnedAt: learnt }, null)
    expect(kinds(gated.steps)).toEqual(['tag.add'])
    expect(gated.warning).toBe(warning)
  })

  it('re-subscribes an unsubscribed person through the form only with consent given after the plugin learnt of it', () => {
    const kit = { state: 'cancelled', learnedAt: learnt }
    expect(gateByKitState(steps, kit, { marketing: true, at: learnt - 1 }).warning).toBe('kit_unsubscribed')
    expect(gateByKitState(steps, kit, { marketing: true, at: null }).warning).toBe('kit_unsubscribed')
    const fresh = gateByKitState(steps, kit, { marketing: true, at: learnt + 1 })
    expect(kinds(fresh.steps)).toEqual(['tag.add', 'form.add'])
    expect(fresh.warning).toBe('resubscribe_confirming')
  })

  it('never re-subscribes a bounced or complained person, consent or not', () => {
    for (const state of ['bounced', 'complained']) {
      const gated = gateByKitState(steps, { state, learnedAt: learnt }, { marketing: true, at: learnt + 1 })
      expect(kinds(gated.steps)).toEqual(['tag.add'])
    }
  })

  it('asks for an opt-in form when fresh consent arrives and none is mapped', () => {
    const noForm = steps.filter((s) => s.kind !== 'form.add')
    const gated = gateByKitState(noForm, { state: 'cancelled', learnedAt: learnt }, { marketing: true, at: learnt + 1 })
    expect(kinds(gated.steps)).toEqual(['tag.add'])
    expect(gated.warning).toBe('resubscribe_needs_form')
  })
})
