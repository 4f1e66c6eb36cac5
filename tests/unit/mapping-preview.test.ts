/** The mappings preview as a pure function: held events planned with the saved document and the draft, counted per type. */
import { describe, expect, it } from 'vitest'
import type { Mappings, Rule } from '#shared/api.ts'
import type { Condition } from '#shared/conditions.ts'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import type { MemberEvent } from '../../server/core/envelope.ts'
import { previewMappings, type PreviewEvent } from '../../server/pipeline/mapping-preview.ts'

const T0 = Date.parse('2026-11-01T10:00:00.000Z')
let n = 0

interface Held {
  type?: string
  member?: string
  plan?: string
  status?: string
  level?: string
  email?: string
  consent?: boolean
  at?: number
}

function held({ type = 'user.signed_up', member, plan, status = 'active', level, email, consent, at }: Held = {}): PreviewEvent {
  n += 1
  const memberId = member ?? `m_${n}`
  const event: MemberEvent = {
    specversion: '1.0',
    id: `evt_${n}`,
    source: 'https://appstation.example/communities/c_1',
    type,
    communityid: 'c_1',
    data: {
      member: {
        id: memberId,
        email: email ?? `${memberId}@example.com`,
        ...(consent !== undefined ? { consent: { marketing: consent } } : {}),
      },
      ...(plan !== undefined ? { subscription: { id: `s_${memberId}`, plan, status } } : {}),
      ...(level !== undefined ? { access: { level } } : {}),
    },
  }
  return { event, memberId, eventTime: at ?? T0 + n }
}

const planIs = (value: string): Condition => ({ field: 'subscription.plan', op: 'is', value })
const rule = (conditions: Condition[], actions: Partial<Rule>): Rule => ({ ...emptyEventMapping(), conditions, ...actions })

function mappings(change: (doc: Mappings) => void = () => {}): Mappings {
  const doc = defaultMappings()
  change(doc)
  return doc
}

const typeOf = (preview: ReturnType<typeof previewMappings>, type: string) => preview.events.find((e) => e.type === type)

describe('the mappings preview', () => {
  it('counts per draft rule the events it would apply to, leaving out those the filter skips', () => {
    const draft = mappings((m) => {
      m.events['subscription.started']!.rules = [
        rule([planIs('pro-annual')], { add_tags: [{ name: 'Annual' }] }),
        rule([planIs('nobody')], { add_tags: [{ name: 'Never' }] }),
      ]
      m.filter = [{ field: 'member.email_domain', op: 'is_not', value: 'blocked.example' }]
    })
    const events = [
      held({ type: 'subscription.started', plan: 'pro-annual' }),
      held({ type: 'subscription.started', plan: 'Pro-Annual' }),
      held({ type: 'subscription.started', plan: 'pro-annual', email: 'x@blocked.example' }),
      held({ type: 'subscription.started', plan: 'monthly' }),
    ]
    const started = typeOf(previewMappings({ events, saved: mappings(), draft }), 'subscription.started')
    expect(started?.considered).toBe(4)
    expect(started?.rules).toEqual([
      { index: 0, matched: 2 },
      { index: 1, matched: 0 },
    ])
    expect(started?.left_out_by_filter).toEqual({ saved: 0, draft: 1 })
    expect(started?.newly_skipped).toBe(1)
    expect(started?.newly_sent).toBe(0)
  })

  it('counts the members the saved filter left out and the draft lets through', () => {
    const saved = mappings((m) => (m.filter = [{ field: 'member.email_domain', op: 'ends_with', value: 'example.com' }]))
    const events = [held({ email: 'a@example.com' }), held({ email: 'b@other.org' }), held({ email: 'c@other.org' })]
    const signups = typeOf(previewMappings({ events, saved, draft: mappings() }), 'user.signed_up')
    expect(signups?.left_out_by_filter).toEqual({ saved: 2, draft: 0 })
    expect(signups?.newly_sent).toBe(2)
    expect(signups?.changes).toEqual([{ kind: 'tag', name: 'New Member', gain: 2, lose: 0 }])
  })

  it('counts gains and losses in distinct members: several events of one member count once', () => {
    const saved = mappings((m) => {
      m.events['subscription.started']!.add_tags.push({ name: 'Trial' })
    })
    const draft = mappings((m) => {
      m.events['subscription.started']!.remove_tags.push({ name: 'Old' })
      m.events['subscription.started']!.rules = [rule([planIs('pro-annual')], { add_tags: [{ name: 'Annual' }] })]
    })
    const events = [
      held({ type: 'subscription.started', member: 'm_ada', plan: 'pro-annual' }),
      held({ type: 'subscription.started', member: 'm_ada', plan: 'pro-annual' }),
      held({ type: 'subscription.started', member: 'm_bob', plan: 'monthly' }),
    ]
    const started = typeOf(previewMappings({ events, saved, draft }), 'subscription.started')
    expect(started?.changes).toEqual([
      // Saved adds Trial and the draft does not; the draft removes Old and the saved one did not.
      { kind: 'tag', name: 'Old', gain: 0, lose: 2 },
      { kind: 'tag', name: 'Trial', gain: 0, lose: 2 },
      { kind: 'tag', name: 'Annual', gain: 1, lose: 0 },
    ])
  })

  it('compares tags by name in any case, and forms and sequences by id', () => {
    const saved = mappings((m) => {
      m.events['user.signed_up']!.add_to_forms.push({ id: 21, name: 'Newsletter' })
    })
    const draft = mappings((m) => {
      m.events['user.signed_up']!.add_tags = [{ name: 'new member' }]
      m.events['user.signed_up']!.add_to_forms.push({ id: 21, name: 'Newsletter (renamed)' })
      m.events['user.signed_up']!.add_to_sequences.push({ id: 31, name: 'Welcome' })
    })
    const signups = typeOf(previewMappings({ events: [held(), held()], saved, draft }), 'user.signed_up')
    expect(signups?.changes).toEqual([{ kind: 'sequence', name: 'Welcome', gain: 2, lose: 0 }])
  })

  it('counts the members of an import under member.snapshot, with the tags their state implies and the snapshot’s own rules', () => {
    const draft = mappings((m) => {
      m.events['subscription.started']!.add_tags.push({ name: 'Paying' })
      m.events['member.snapshot'] = {
        ...emptyEventMapping(),
        rules: [rule([planIs('pro-annual')], { add_tags: [{ name: 'Imported annual' }] })],
      }
    })
    const events = [
      held({ type: 'member.snapshot', plan: 'pro-annual', status: 'active' }),
      held({ type: 'member.snapshot', plan: 'monthly', status: 'canceled' }),
      held({ type: 'member.snapshot' }),
    ]
    const snapshots = typeOf(previewMappings({ events, saved: mappings(), draft }), 'member.snapshot')
    expect(snapshots?.considered).toBe(3)
    expect(snapshots?.rules).toEqual([{ index: 0, matched: 1 }])
    expect(snapshots?.changes).toEqual([
      { kind: 'tag', name: 'Imported annual', gain: 1, lose: 0 },
      { kind: 'tag', name: 'Paying', gain: 1, lose: 0 },
    ])
  })

  it('counts events the draft stops sending and starts sending', () => {
    const saved = mappings((m) => {
      m.fields = []
      m.events['access.granted'] = emptyEventMapping()
    })
    const draft = mappings((m) => {
      m.fields = []
      m.events['access.revoked'] = emptyEventMapping()
      m.events['access.granted'] = { ...emptyEventMapping(), add_tags: [{ name: 'Level {{access.level}}' }] }
    })
    const events = [
      held({ type: 'access.revoked', level: 'gold' }),
      held({ type: 'access.granted', level: 'gold' }),
      held({ type: 'access.granted', level: 'silver' }),
    ]
    const preview = previewMappings({ events, saved, draft })
    expect(typeOf(preview, 'access.revoked')).toMatchObject({ newly_skipped: 1, newly_sent: 0, changes: [] })
    expect(typeOf(preview, 'access.granted')).toMatchObject({
      newly_skipped: 0,
      newly_sent: 2,
      changes: [
        { kind: 'tag', name: 'Level gold', gain: 1, lose: 0 },
        { kind: 'tag', name: 'Level silver', gain: 1, lose: 0 },
      ],
    })
  })

  it('follows the consent setting it is given: in the consent-only mode, members who did not agree gain nothing', () => {
    const draft = mappings((m) => m.events['user.signed_up']!.add_tags.push({ name: 'Welcome' }))
    const events = [held({ consent: true }), held({ consent: false }), held()]
    const welcome = (consentMode?: 'marketing_consent') =>
      typeOf(previewMappings({ events, saved: mappings(), draft, ...(consentMode ? { consentMode } : {}) }), 'user.signed_up')?.changes
    expect(welcome()).toEqual([{ kind: 'tag', name: 'Welcome', gain: 3, lose: 0 }])
    expect(welcome('marketing_consent')).toEqual([{ kind: 'tag', name: 'Welcome', gain: 1, lose: 0 }])
  })

  it('lists the types with events in the order of the event types, each with its oldest time, and says ordering is not simulated', () => {
    const events = [
      held({ type: 'access.granted', level: 'gold', at: T0 + 5000 }),
      held({ at: T0 + 3000 }),
      held({ at: T0 + 1000 }),
      held({ type: 'user.invented', at: T0 }),
    ]
    const preview = previewMappings({ events, saved: mappings(), draft: mappings() })
    expect(preview.events.map((e) => [e.type, e.considered, e.since])).toEqual([
      ['user.signed_up', 2, new Date(T0 + 1000).toISOString()],
      ['access.granted', 1, new Date(T0 + 5000).toISOString()],
    ])
    expect(preview.held_since).toBe(new Date(T0 + 1000).toISOString())
    expect(preview.ordering_simulated).toBe(false)
  })

  it('answers no event types and no time when nothing is held', () => {
    expect(previewMappings({ events: [], saved: mappings(), draft: mappings() })).toEqual({
      events: [],
      held_since: null,
      ordering_simulated: false,
    })
  })
})
