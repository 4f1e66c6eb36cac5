import { describe, expect, it } from 'vitest'
import type { Mappings } from '#shared/api.ts'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import type { MemberEvent } from '../../server/core/envelope.ts'
import {
  deltaIsEmpty,
  plan,
  plannedValues,
  removalsFor,
  scopesToRead,
  subscriberDelta,
  type Plan,
  type PlanInput,
  type SendPlan,
} from '../../server/core/planner.ts'
import type { OrderingMark } from '../../server/core/queue.ts'

const T = 1_700_000_000_000

const event = (
  type: string,
  data: Partial<MemberEvent['data']> = {},
  member: Partial<MemberEvent['data']['member']> = {},
): MemberEvent => ({
  specversion: '1.0',
  id: 'evt_1',
  source: 'https://appstation.example/communities/c_1',
  type,
  communityid: 'c_1',
  data: { member: { id: 'm_1', email: ' Ada@Example.com ', first_name: 'Ada', ...member }, ...data },
})

const input = (e: MemberEvent, overrides: Partial<PlanInput> = {}): PlanInput => ({
  event: e,
  memberId: 'm_1',
  eventTime: T,
  eventId: e.id,
  credential: 'connected',
  mappings: defaultMappings(),
  marks: new Map(),
  ...overrides,
})

const marks = (...list: [string, number, string][]): Map<string, OrderingMark> =>
  new Map(list.map(([scope, eventTime, eventId]) => [scope, { scope, eventTime, eventId }]))

function sent(p: Plan): SendPlan {
  if (p.kind !== 'send') throw new Error(`expected a send plan, got ${p.kind} ${p.reason}`)
  return p
}

const stepNames = (p: SendPlan) =>
  p.steps.map((s) =>
    s.kind === 'tag.add' || s.kind === 'tag.remove'
      ? `${s.kind} ${s.tag.name}`
      : s.kind === 'form.add'
        ? `form ${s.form.name}`
        : s.kind === 'sequence.add'
          ? `sequence ${s.sequence.name}`
          : s.kind,
  )

describe('the planner', () => {
  it("skips with not_connected, and holds with the key's state, before anything else", () => {
    const e = event('user.signed_up')
    expect(plan(input(e, { credential: 'none' }))).toEqual({ kind: 'skip', reason: 'not_connected', details: {} })
    expect(plan(input(e, { credential: 'invalid' }))).toEqual({ kind: 'hold', reason: 'key_rejected' })
    expect(plan(input(e, { credential: 'unreadable' }))).toEqual({ kind: 'hold', reason: 'key_unreadable' })
  })

  it('skips an event whose mapping is empty and that carries no profile or field', () => {
    const mappings: Mappings = { events: { 'user.deleted': emptyEventMapping() }, fields: [] }
    expect(plan(input(event('user.deleted'), { mappings }))).toEqual({
      kind: 'skip',
      reason: 'empty_mapping',
      details: { eventType: 'user.deleted' },
    })
  })

  it('skips a type with no mapping at all', () => {
    const mappings: Mappings = { events: {}, fields: [] }
    expect(plan(input(event('access.granted', { access: { level: 'gold' } }), { mappings }))).toMatchObject({
      kind: 'skip',
      reason: 'event_not_handled',
    })
  })

  it('skips an event older than the newest applied in its scope, naming that one', () => {
    const e = event('subscription.canceled', { subscription: { id: 's_1', plan: 'pro' } })
    const p = plan(input(e, { marks: marks(['subscription:s_1', T + 1, 'evt_newer']) }))
    expect(p).toEqual({ kind: 'skip', reason: 'stale_event', details: { eventId: 'evt_newer', scope: 'subscription s_1' } })
    // An older mark, or one of the same time, does not make it stale.
    expect(plan(input(e, { marks: marks(['subscription:s_1', T, 'evt_same']) })).kind).toBe('send')
  })

  it('skips a snapshot once a newer live event was applied, or found nobody in Kit', () => {
    const snapshot = event('member.snapshot')
    expect(plan(input(snapshot, { marks: marks(['profile:m_1', T + 5, 'evt_live']) }))).toMatchObject({
      kind: 'skip',
      reason: 'stale_snapshot',
      details: { eventId: 'evt_live' },
    })
    expect(plan(input(snapshot, { marks: marks(['settled:m_1', T + 5, 'evt_gone']) }))).toMatchObject({
      kind: 'skip',
      reason: 'stale_snapshot',
      details: { eventId: 'evt_gone' },
    })
  })

  it('skips a profile-only event whose profile a newer event already set', () => {
    const mappings: Mappings = { events: { 'user.updated': emptyEventMapping() }, fields: [] }
    expect(plan(input(event('user.updated'), { mappings, marks: marks(['profile:m_1', T + 1, 'evt_newer']) }))).toEqual({
      kind: 'skip',
      reason: 'stale_profile',
      details: { eventId: 'evt_newer' },
    })
  })

  it('plans the subscriber first, with the normalised address, then the mapped steps in order', () => {
    const mappings = defaultMappings()
    mappings.events['subscription.started'] = {
      add_tags: [{ name: 'Active Member', id: 7 }],
      remove_tags: [{ name: 'Cancelled' }],
      add_to_forms: [{ id: 3, name: 'Welcome' }],
      add_to_sequences: [{ id: 4, name: 'Onboarding' }],
      unsubscribe: false,
    }
    const p = sent(plan(input(event('subscription.started', { subscription: { id: 's_1', plan: 'pro' } }), { mappings })))
    expect(p.subscriber).toMatchObject({
      email: 'ada@example.com',
      firstName: 'Ada',
      createIfMissing: true,
      inactive: true,
      writeProfile: true,
    })
    expect(stepNames(p)).toEqual(['tag.remove Cancelled', 'tag.add Active Member', 'form Welcome', 'sequence Onboarding'])
    expect(p.steps[1]).toEqual({ kind: 'tag.add', tag: { name: 'Active Member', storedId: 7, templated: false } })
  })

  it('gives a subscriber this delivery creates no tag removals, and keeps them for one Kit had', () => {
    const p = sent(plan(input(event('subscription.started', { subscription: { id: 's_1', plan: 'pro' } }))))
    expect(removalsFor(p.steps, true).map((s) => s.kind)).toEqual(['tag.add'])
    expect(removalsFor(p.steps, false).map((s) => s.kind)).toEqual(['tag.remove', 'tag.add'])
  })

  it('fills templated tag names from the event, and leaves out those it has no value for', () => {
    const granted = sent(plan(input(event('access.granted', { access: { level: 'gold' } }))))
    expect(granted.steps).toEqual([{ kind: 'tag.add', tag: { name: 'Access: gold', storedId: null, templated: true } }])
    const mappings = defaultMappings()
    mappings.events['user.signed_up'] = {
      ...emptyEventMapping(),
      add_tags: [{ name: 'Plan: {{member.fields.mk_plan}}' }, { name: 'New Member' }],
    }
    const signedUp = sent(plan(input(event('user.signed_up'), { mappings })))
    expect(stepNames(signedUp)).toEqual(['tag.add New Member'])
    expect(signedUp.unfilledTags).toEqual([{ name: 'Plan: {{member.fields.mk_plan}}', mode: 'add' }])
  })

  it('creates no one for removals and unsubscribes, nor for a deletion', () => {
    expect(sent(plan(input(event('access.revoked', { access: { level: 'gold' } })))).subscriber.createIfMissing).toBe(false)
    const mappings = defaultMappings()
    mappings.events['user.deleted'] = { ...emptyEventMapping(), unsubscribe: true }
    const deleted = sent(plan(input(event('user.deleted'), { mappings })))
    expect(deleted.subscriber.createIfMissing).toBe(false)
    expect(stepNames(deleted)).toEqual(['unsubscribe'])
  })

  it('writes mapped fields, filling the plan from a started subscription, and leaves out those a newer event wrote', () => {
    const e = event('subscription.started', { subscription: { id: 's_1', plan: 'pro' } }, { fields: { mk_access_level: 'gold' } })
    const p = sent(plan(input(e)))
    expect(p.subscriber.fields).toEqual({
      mk_subscription_plan: { key: 'subscription_plan', label: 'Subscription plan', value: 'pro' },
      mk_access_level: { key: 'access_level', label: 'Access level', value: 'gold' },
    })
    expect(plannedValues(p.subscriber.fields)).toEqual({ subscription_plan: 'pro', access_level: 'gold' })
    const newer = sent(plan(input(e, { marks: marks(['field:m_1:mk_access_level', T + 1, 'evt_newer']) })))
    expect(Object.keys(newer.subscriber.fields)).toEqual(['mk_subscription_plan'])
    expect(newer.newerFields).toBe(true)
    expect(newer.marks.map((m) => m.scope)).toEqual(['subscription:s_1', 'profile:m_1', 'field:m_1:mk_subscription_plan'])
  })

  it('writes no profile and sets no profile mark when a newer event set the profile', () => {
    const e = event('subscription.started', { subscription: { id: 's_1', plan: 'pro' } })
    const p = sent(plan(input(e, { marks: marks(['profile:m_1', T + 1, 'evt_newer']) })))
    expect(p.staleProfile).toBe(true)
    expect(p.subscriber).toMatchObject({ writeProfile: false, createIfMissing: false })
    expect(p.marks.map((m) => m.scope)).not.toContain('profile:m_1')
    expect(p.settledMarks).toEqual([
      { scope: 'subscription:s_1', eventTime: T, eventId: 'evt_1' },
      { scope: 'settled:m_1', eventTime: T, eventId: 'evt_1' },
    ])
  })

  it('reads the marks of every scope it decides by', () => {
    const e = event('access.granted', { access: { level: 'gold' } }, { fields: { mk_x: 'y' } })
    expect(scopesToRead(e, 'm_1')).toEqual([
      'access:m_1:gold',
      'profile:m_1',
      'settled:m_1',
      'deleted:m_1',
      'field:m_1:mk_x',
      'field:m_1:mk_access_level',
    ])
  })

  it('finds what a known subscriber needs written', () => {
    const known = { email: 'ada@example.com', firstName: 'Ada', fields: { plan: 'pro' } }
    const same = subscriberDelta(known, { email: 'ada@example.com', firstName: 'Ada', fields: { plan: 'pro' }, writeProfile: true })
    expect(deltaIsEmpty(same)).toBe(true)
    expect(
      subscriberDelta(known, { email: 'ada@new.example', firstName: null, fields: { plan: 'pro', level: '' }, writeProfile: true }),
    ).toEqual({
      fields: {},
      nameChanged: false,
      emailChanged: true,
    })
    expect(
      subscriberDelta(known, { email: 'ada@new.example', firstName: 'Ada L', fields: { plan: 'basic' }, writeProfile: false }),
    ).toEqual({
      fields: { plan: 'basic' },
      nameChanged: false,
      emailChanged: false,
    })
  })

  it('is pure: the same input gives the same plan', () => {
    const e = event('subscription.started', { subscription: { id: 's_1', plan: 'pro' } })
    expect(plan(input(e))).toEqual(plan(input(e)))
  })
})

describe('the planner erasing a deleted member', () => {
  /** The defaults, user.deleted erasing, with a form, a sequence and a templated tag filled from the member's fields. */
  function erasing(): Mappings {
    const mappings = defaultMappings()
    mappings.events['user.deleted'] = {
      ...emptyEventMapping(),
      add_to_forms: [{ id: 3, name: 'Goodbye form' }],
      add_to_sequences: [{ id: 4, name: 'Win back' }],
      erase: true,
    }
    mappings.events['user.updated'] = {
      ...emptyEventMapping(),
      add_tags: [{ name: 'Plan: {{member.fields.mk_plan}}' }, { name: 'VIP', id: 9 }],
      remove_tags: [{ name: 'new member' }],
    }
    return mappings
  }

  it('removes every mapped tag of every event once, each filled from the event, then unsubscribes; joins nothing', () => {
    const e = event('user.deleted', {}, { fields: { mk_plan: 'gold' } })
    const p = sent(plan(input(e, { mappings: erasing() })))
    expect(p.erase).toBe(true)
    expect(stepNames(p)).toEqual([
      'tag.remove New Member',
      'tag.remove Active Member',
      'tag.remove Cancelled',
      'tag.remove Plan: gold',
      'tag.remove VIP',
      'unsubscribe',
    ])
    expect(p.steps.find((s) => s.kind === 'tag.remove' && s.tag.name === 'VIP')).toEqual({
      kind: 'tag.remove',
      tag: { name: 'VIP', storedId: 9, templated: false },
    })
  })

  it('leaves out a templated tag the deletion has no value for, as every plan does', () => {
    const p = sent(plan(input(event('user.deleted'), { mappings: erasing() })))
    expect(stepNames(p)).not.toContain('tag.remove Access: gold')
    expect(stepNames(p).filter((n) => n.startsWith('tag.remove Plan'))).toEqual([])
  })

  it('empties every mapped field, carried by the event or not, and writes no name or email and creates nobody', () => {
    const p = sent(plan(input(event('user.deleted'), { mappings: erasing() })))
    expect(p.subscriber.fields).toEqual({
      mk_subscription_plan: { key: 'subscription_plan', label: 'Subscription plan', value: '' },
      mk_access_level: { key: 'access_level', label: 'Access level', value: '' },
    })
    expect(p.subscriber).toMatchObject({ writeProfile: false, createIfMissing: false })
  })

  it('erases even with no tag and no field mapped', () => {
    const mappings: Mappings = { events: { 'user.deleted': { ...emptyEventMapping(), erase: true } }, fields: [] }
    const p = sent(plan(input(event('user.deleted'), { mappings })))
    expect(stepNames(p)).toEqual(['unsubscribe'])
    expect(p.erase).toBe(true)
  })

  it('erases nothing for a deletion mapped without erasure, and never for another event type', () => {
    const mappings = erasing()
    mappings.events['user.deleted'] = { ...emptyEventMapping(), unsubscribe: true }
    expect(sent(plan(input(event('user.deleted'), { mappings }))).erase).toBe(false)
    const updated = erasing()
    updated.events['user.updated'] = { ...emptyEventMapping(), add_tags: [{ name: 'VIP' }], erase: true }
    const p = sent(plan(input(event('user.updated'), { mappings: updated })))
    expect(p.erase).toBe(false)
    expect(stepNames(p)).toEqual(['tag.add VIP'])
  })

  it('marks the member deleted, whether Kit had them or not', () => {
    const p = sent(plan(input(event('user.deleted'), { mappings: erasing() })))
    expect(p.marks).toContainEqual({ scope: 'deleted:m_1', eventTime: T, eventId: 'evt_1' })
    expect(p.settledMarks).toContainEqual({ scope: 'deleted:m_1', eventTime: T, eventId: 'evt_1' })
    const updated = sent(plan(input(event('user.updated'), { mappings: erasing() })))
    expect(updated.marks.map((m) => m.scope)).not.toContain('deleted:m_1')
  })

  it("skips a deleted member's older events, naming the deletion, and sends newer ones", () => {
    const deleted = marks(['deleted:m_1', T + 1, 'evt_deleted'])
    const e = event('subscription.started', { subscription: { id: 's_1', plan: 'pro' } })
    expect(plan(input(e, { marks: deleted }))).toEqual({ kind: 'skip', reason: 'member_deleted', details: { eventId: 'evt_deleted' } })
    expect(plan(input(e, { marks: deleted, eventTime: T + 2 })).kind).toBe('send')
    expect(plan(input(event('user.deleted'), { mappings: erasing(), marks: marks(['deleted:m_1', T, 'evt_1']) })).kind).toBe('send')
  })

  it('skips an event whose personal data was purged, after the verdict on the key', () => {
    const purged = event('user.updated', {}, { email: '', first_name: undefined })
    expect(plan(input(purged))).toEqual({ kind: 'skip', reason: 'member_deleted', details: {} })
    expect(plan(input(purged, { credential: 'invalid' }))).toEqual({ kind: 'hold', reason: 'key_rejected' })
  })
})
