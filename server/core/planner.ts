/**
 * The one decision of what a member event does in Kit, as a pure function: no I/O, no clock, no
 * randomness. From the event, the community's mappings, the ordering marks and whether a Kit key
 * is saved, it answers a skip or a hold (with its reason code), or the ordered Kit steps and the
 * marks to write. The processor executes a plan; the import preview and the mappings preview
 * (pipeline/mapping-preview.ts) count the same plans.
 *
 * Two decisions need Kit's answer and are left to the executor, each through a function here:
 * tag removals are sent only to a subscriber this delivery did not create (`removalsFor`), and
 * what a known subscriber needs written is the difference `subscriberDelta` finds.
 */
import type { ConsentMode, EventMapping, KitRef, Mappings } from '#shared/api.ts'
import { emptyEventMapping } from '#shared/defaults.ts'
import { hasPlaceholder, isEventType, type EventType } from '#shared/events.ts'
import { normaliseEmail, type MemberEvent } from './envelope.ts'
import { isErasedEvent } from './erasure.ts'
import { fillTemplate, mappedFields, memberFieldValues, orderingScope } from './member-fields.ts'
import type { OrderingMark } from './queue.ts'
import type { KitStateWarning, ReasonCode, ReasonDetails } from './reasons.ts'
import { allHold } from '#shared/conditions.ts'
import { applyRules, matchingRules } from './rules.ts'
import { snapshotMapping, SNAPSHOT_TYPE } from './snapshot.ts'

/** A mapped tag as one delivery applies it. */
export interface TagTarget {
  /** The name as mapped, filled in from the event when it is templated. */
  name: string
  /** The id the mapping document gives it (picked in the panel, or held since first use). */
  storedId: number | null
  templated: boolean
}

/** One mapped member field to write: Kit's key for it as mapped, the label the owner knows, the value. */
export interface PlannedField {
  key: string
  label: string
  /** Kit takes strings only; an emptied member field is written as "". */
  value: string
}

/** What the plugin last wrote to Kit for a member (its kit_subscribers row). */
export interface KnownSubscriber {
  email: string
  firstName: string | null
  fields: Record<string, string | null>
}

/** The saved Kit key as far as planning is concerned. */
export type CredentialState = 'none' | 'connected' | 'invalid' | 'unreadable'

export interface PlanInput {
  event: MemberEvent
  /** The member id the delivery is for (the event's member). */
  memberId: string
  /** The event's time (epoch ms), as the queue recorded it. */
  eventTime: number
  eventId: string
  credential: CredentialState
  mappings: Mappings
  /** The community's marks for `scopesToRead(event, memberId)` (absent: none set). */
  marks: ReadonlyMap<string, OrderingMark>
  /** Who may become a Kit subscriber (default: every member). */
  consentMode?: ConsentMode
  /** The plugin already knows this member's Kit subscriber under the saved key. */
  knownInKit?: boolean
}

/** The member's marketing consent as the event gives it: `at` in epoch ms (null: not given). */
export interface PlannedConsent {
  marketing: boolean
  at: number | null
}

export interface SubscriberStep {
  email: string
  firstName: string | null
  /** Mapped fields by source (those a newer applied event wrote are left out). */
  fields: Record<string, PlannedField>
  /** Creates the subscriber when Kit has none: only events that add something do. */
  createIfMissing: boolean
  /** Created `inactive`, for a form to confirm. */
  inactive: boolean
  /** Writes name and email (false: a newer event already set the member's profile). */
  writeProfile: boolean
}

export type KitStep =
  | { kind: 'tag.remove'; tag: TagTarget }
  | { kind: 'tag.add'; tag: TagTarget }
  | { kind: 'form.add'; form: KitRef }
  | { kind: 'sequence.add'; sequence: KitRef }
  | { kind: 'unsubscribe' }

export interface SendPlan {
  kind: 'send'
  type: EventType
  subscriber: SubscriberStep
  /** After the subscriber, in order. Tag removals are dropped for a subscriber this delivery creates (see removalsFor). */
  steps: KitStep[]
  /** Tags left out (by mapped name): a templated name whose placeholder the event has no value for. */
  unfilledTags: { name: string; mode: 'add' | 'remove' }[]
  /** A newer event already set the member's profile; `newerFields`: and some of the fields. */
  staleProfile: boolean
  newerFields: boolean
  /** Marks written when the delivery applies (or, put back, once it changed something). */
  marks: OrderingMark[]
  /** Marks written when Kit has nobody to apply it to (the scope is settled, the profile is not). */
  settledMarks: OrderingMark[]
  /** The consent the event carries (null: the platform does not know); see gateByKitState. */
  consent: PlannedConsent | null
  /** `user.deleted` with erasure: the person is to be listed for deletion by hand once done. */
  erase: boolean
  /** The indices of the event type's own rules whose conditions held (for previews; a snapshot: member.snapshot's). */
  rules: number[]
}

/** A plan that sends nothing: a skip, or a hold until the owner saves a working key. */
export type Unsent = { kind: 'skip'; reason: ReasonCode; details: ReasonDetails } | { kind: 'hold'; reason: ReasonCode }

export type Plan = Unsent | SendPlan

const profileScope = (memberId: string) => `profile:${memberId}`
const settledScope = (memberId: string) => `settled:${memberId}`
const fieldScope = (memberId: string, source: string) => `field:${memberId}:${source}`
/** Set by a member's `user.deleted`: nothing older of theirs is sent to Kit any more. */
const deletedScope = (memberId: string) => `deleted:${memberId}`

/** The ordering scopes whose marks planning the event needs. */
export function scopesToRead(event: MemberEvent, memberId: string): string[] {
  const scope = orderingScope(event)
  const fields = Object.keys(memberFieldValues(event)).map((source) => fieldScope(memberId, source))
  return [...(scope ? [scope] : []), profileScope(memberId), settledScope(memberId), deletedScope(memberId), ...fields]
}

const describeScope = (event: MemberEvent) =>
  event.type.startsWith('subscription.') ? `subscription ${event.data.subscription?.id}` : `access level "${event.data.access?.level}"`

const isFormOrSequence = (s: KitStep) => s.kind === 'form.add' || s.kind === 'sequence.add'

function plannedConsent(event: MemberEvent): PlannedConsent | null {
  const consent = event.data.member.consent
  if (!consent) return null
  const at = typeof consent.at === 'string' ? Date.parse(consent.at) : Number.NaN
  return { marketing: consent.marketing, at: Number.isNaN(at) ? null : at }
}

/** Every tag the community maps, each once (by id when it has one, else by name), filled from the event. */
function everyMappedTag(mappings: Mappings, event: MemberEvent): TagTarget[] {
  const seen = new Set<string>()
  const out: TagTarget[] = []
  for (const m of Object.values(mappings.events)) {
    const lists = [m, ...(m?.rules ?? [])].flatMap((part) => [...(part?.add_tags ?? []), ...(part?.remove_tags ?? [])])
    for (const ref of lists) {
      const templated = hasPlaceholder(ref.name)
      const name = templated ? fillTemplate(ref.name, event) : ref.name
      if (name === null || name === '') continue
      const storedId = templated ? null : (ref.id ?? null)
      const key = storedId !== null ? `id:${storedId}` : `name:${name.toLowerCase()}`
      if (seen.has(key)) continue
      seen.add(key)
      out.push({ name, storedId, templated })
    }
  }
  return out
}

const isEmptyMapping = (m: EventMapping) =>
  m.add_tags.length + m.remove_tags.length + m.add_to_forms.length + m.add_to_sequences.length === 0 && !m.unsubscribe

const PROFILE_EVENTS: readonly string[] = ['user.signed_up', 'user.updated', SNAPSHOT_TYPE]

/** A skip or a hold when no working key is saved (planned before anything else is read); null: go on. */
export function credentialVerdict(credential: CredentialState): Unsent | null {
  if (credential === 'none') return { kind: 'skip', reason: 'not_connected', details: {} }
  if (credential === 'unreadable') return { kind: 'hold', reason: 'key_unreadable' }
  if (credential === 'invalid') return { kind: 'hold', reason: 'key_rejected' }
  return null
}

export function plan(input: PlanInput): Plan {
  const { event, memberId, eventTime, marks } = input
  const verdict = credentialVerdict(input.credential)
  if (verdict) return verdict

  const newer = (scope: string) => {
    const mark = marks.get(scope)
    return mark !== undefined && mark.eventTime > eventTime ? mark : undefined
  }
  // A deleted member's older events are never applied, nor any event whose personal data was purged.
  if (isErasedEvent(event)) return { kind: 'skip', reason: 'member_deleted', details: {} }
  const deletion = newer(deletedScope(memberId))
  if (deletion) return { kind: 'skip', reason: 'member_deleted', details: { eventId: deletion.eventId } }
  const scope = orderingScope(event)
  const staleScope = scope ? newer(scope) : undefined
  if (staleScope) return { kind: 'skip', reason: 'stale_event', details: { eventId: staleScope.eventId, scope: describeScope(event) } }

  // Every event carries the member's profile as it was at the event's time: the newest one applied
  // wins. A snapshot is the member as they were when the sync started: once a newer live event was
  // applied, or found nobody in Kit, it has nothing left to say.
  const profileMark = newer(profileScope(memberId))
  const type = event.type as EventType
  if (type === SNAPSHOT_TYPE) {
    const later = profileMark ?? newer(settledScope(memberId))
    if (later) return { kind: 'skip', reason: 'stale_snapshot', details: { eventId: later.eventId } }
  }
  const consent = plannedConsent(event)
  const withdrawn = consent?.marketing === false
  // A withdrawal unsubscribes whatever the event's mapping says, even when it maps nothing.
  // The member filter leaves out whom it does not match, before anything else is decided; a
  // withdrawal of consent still unsubscribes them.
  if (!withdrawn && !allHold(input.mappings.filter, event.data)) return { kind: 'skip', reason: 'filtered_out', details: {} }
  const saved = type === SNAPSHOT_TYPE ? undefined : input.mappings.events[type]
  // The rules a preview counts are the event type's own: a snapshot's are member.snapshot's.
  const own = type === SNAPSHOT_TYPE ? input.mappings.events[SNAPSHOT_TYPE] : saved
  const mapping =
    (type === SNAPSHOT_TYPE ? snapshotMapping(input.mappings, event) : saved && applyRules(saved, event.data)) ??
    (withdrawn && isEventType(type) ? emptyEventMapping() : undefined)
  if (!mapping) return { kind: 'skip', reason: 'event_not_handled', details: { eventType: event.type } }

  // Consent decides who may be created: in the consent-only mode a member who has not agreed and
  // whom Kit does not know yet through the plugin costs no request at all.
  const consentOnly = input.consentMode === 'marketing_consent'
  if (consentOnly && consent?.marketing !== true && !input.knownInKit) return { kind: 'skip', reason: 'no_consent', details: {} }
  const erase = type === 'user.deleted' && mapping.erase === true

  // Each field has its own scope: an older event still writes a field no newer applied event wrote.
  const carried = Object.keys(memberFieldValues(event))
  const newerFields = new Set(carried.filter((source) => newer(fieldScope(memberId, source)) !== undefined))
  const fields = erase
    ? Object.fromEntries(input.mappings.fields.map((f) => [f.source, { key: f.kit_field.key, label: f.kit_field.label, value: '' }]))
    : mappedFields(input.mappings, event, { skip: newerFields })
  const staleProfile = profileMark !== undefined
  const wantsProfile = PROFILE_EVENTS.includes(type) && !staleProfile
  if (isEmptyMapping(mapping) && Object.keys(fields).length === 0 && !wantsProfile && !withdrawn && !erase) {
    return profileMark
      ? { kind: 'skip', reason: 'stale_profile', details: { eventId: profileMark.eventId } }
      : { kind: 'skip', reason: 'empty_mapping', details: { eventType: event.type } }
  }

  const unfilledTags: SendPlan['unfilledTags'] = []
  const targets = (refs: EventMapping['add_tags'], mode: 'add' | 'remove'): TagTarget[] =>
    refs.flatMap((ref) => {
      const templated = hasPlaceholder(ref.name)
      const name = templated ? fillTemplate(ref.name, event) : ref.name
      if (name === null || name === '') {
        unfilledTags.push({ name: ref.name, mode })
        return []
      }
      return [{ name, storedId: templated ? null : (ref.id ?? null), templated }]
    })
  let steps: KitStep[] = erase
    ? everyMappedTag(input.mappings, event).map((tag): KitStep => ({ kind: 'tag.remove', tag }))
    : [
        ...targets(mapping.remove_tags, 'remove').map((tag): KitStep => ({ kind: 'tag.remove', tag })),
        ...targets(mapping.add_tags, 'add').map((tag): KitStep => ({ kind: 'tag.add', tag })),
        ...mapping.add_to_forms.map((form): KitStep => ({ kind: 'form.add', form })),
        ...mapping.add_to_sequences.map((sequence): KitStep => ({ kind: 'sequence.add', sequence })),
        ...(mapping.unsubscribe ? [{ kind: 'unsubscribe' } as const] : []),
      ]
  // A member who withdrew consent (in every mode), or is erased, is unsubscribed and joins nothing.
  if (withdrawn || erase) steps = [...steps.filter((s) => !isFormOrSequence(s) && s.kind !== 'unsubscribe'), { kind: 'unsubscribe' }]

  // Only events that add something (a profile, fields, tags, forms, sequences) create a
  // subscriber; removals and unsubscribes apply to one that already exists, or to nobody. A stale
  // profile writes nothing and creates no one: its email may be one the member left.
  const adds =
    !withdrawn &&
    (!consentOnly || consent?.marketing === true) &&
    (PROFILE_EVENTS.includes(type) ||
      Object.keys(fields).length > 0 ||
      mapping.add_tags.length + mapping.add_to_forms.length + mapping.add_to_sequences.length > 0)
  const markOf = (s: string): OrderingMark => ({ scope: s, eventTime, eventId: input.eventId })
  const written = carried.filter((source) => source in fields)
  const deletedMarks = type === 'user.deleted' ? [markOf(deletedScope(memberId))] : []
  return {
    kind: 'send',
    type,
    subscriber: {
      email: normaliseEmail(event.data.member.email),
      firstName: event.data.member.first_name ?? null,
      fields,
      createIfMissing: type !== 'user.deleted' && adds && !staleProfile,
      inactive: mapping.add_to_forms.length > 0,
      // An erasure writes no name or email: it only empties what was mapped.
      writeProfile: !staleProfile && !erase,
    },
    steps,
    unfilledTags,
    staleProfile,
    newerFields: newerFields.size > 0,
    marks: [
      ...(scope ? [markOf(scope)] : []),
      ...(staleProfile ? [] : [markOf(profileScope(memberId))]),
      ...written.map((f) => markOf(fieldScope(memberId, f))),
      ...deletedMarks,
    ],
    settledMarks: [...(scope ? [markOf(scope)] : []), markOf(settledScope(memberId)), ...deletedMarks],
    consent,
    erase,
    rules: own ? matchingRules(own, event.data) : [],
  }
}

/** Kit's state for the subscriber as the plugin knows it, and when it first learnt that state (epoch ms). */
export interface KnownKitState {
  state: string
  learnedAt: number
}

/** The plan for one queued delivery of a connected community: the processor's and the bulk sender's. */
export function planDelivery(
  delivery: { memberId: string; eventTime: number; eventId: string },
  event: MemberEvent,
  context: Pick<PlanInput, 'mappings' | 'marks' | 'consentMode' | 'knownInKit'>,
): Plan {
  const { memberId, eventTime, eventId } = delivery
  return plan({ event, memberId, eventTime, eventId, credential: 'connected', ...context })
}

/** True when the steps hold a form or sequence, which Kit's current state for the person must allow. */
export const needsKitState = (steps: readonly KitStep[]): boolean => steps.some(isFormOrSequence)

/**
 * The steps Kit's state for the person allows, and the warning a succeeded delivery carries.
 * Active or unconfirmed: all of them. Unsubscribed (`cancelled`): forms and sequences are left out,
 * unless the event carries consent given after the plugin learnt of the unsubscribe — then only the
 * mapped forms run (Kit asks the person to confirm) and sequences wait until Kit has them active.
 * Bounced or complained: never a form or sequence. No state is ever changed for someone who is
 * already unsubscribed, bounced or complained: no unsubscribe is sent to them.
 */
export function gateByKitState(
  steps: readonly KitStep[],
  kit: KnownKitState | null,
  consent: PlannedConsent | null,
): { steps: KitStep[]; warning: KitStateWarning | null } {
  const state = kit?.state
  if (!kit || (state !== 'cancelled' && state !== 'bounced' && state !== 'complained')) return { steps: [...steps], warning: null }
  const kept = steps.filter((s) => !isFormOrSequence(s) && s.kind !== 'unsubscribe')
  if (state === 'bounced') return { steps: kept, warning: 'kit_bounced' }
  if (state === 'complained') return { steps: kept, warning: 'kit_complained' }
  const fresh = consent?.marketing === true && consent.at !== null && consent.at > kit.learnedAt
  if (!fresh) return { steps: kept, warning: 'kit_unsubscribed' }
  const forms = steps.filter((s) => s.kind === 'form.add')
  if (forms.length === 0) return { steps: kept, warning: 'resubscribe_needs_form' }
  return { steps: [...kept, ...forms], warning: 'resubscribe_confirming' }
}

/** The plan's steps for the subscriber as Kit answered: one this delivery created has no tags to remove. */
export function removalsFor(steps: readonly KitStep[], created: boolean): KitStep[] {
  return created ? steps.filter((s) => s.kind !== 'tag.remove') : [...steps]
}

export interface SubscriberDelta {
  /** Field values (by Kit key) that differ from what is known. */
  fields: Record<string, string>
  nameChanged: boolean
  emailChanged: boolean
}

/** What a known subscriber needs written: nothing when all of it is as the plugin last wrote it. */
export function subscriberDelta(
  known: KnownSubscriber,
  wanted: { email: string; firstName: string | null; fields: Record<string, string>; writeProfile: boolean },
): SubscriberDelta {
  return {
    fields: Object.fromEntries(Object.entries(wanted.fields).filter(([k, v]) => (known.fields[k] ?? '') !== v)),
    nameChanged: wanted.writeProfile && wanted.firstName !== null && wanted.firstName !== known.firstName,
    emailChanged: wanted.writeProfile && known.email !== wanted.email,
  }
}

/**
 * Whether a plan fits a bulk batch (Kit's bulk endpoints, OAuth only): it finds or creates the
 * subscriber and writes their profile, and adds or removes tags or adds to forms, nothing else —
 * no sequence, no unsubscribe, no erasure, no new email address (`knownEmail`: the address the
 * plugin last wrote for the member, null when it never did), no tag left unfilled. One rule for
 * the sender and for the import's preview.
 */
export function fitsBulk(planned: SendPlan, knownEmail: string | null): boolean {
  const { subscriber } = planned
  return (
    subscriber.createIfMissing &&
    subscriber.writeProfile &&
    !planned.staleProfile &&
    !planned.erase &&
    planned.unfilledTags.length === 0 &&
    planned.steps.every((s) => s.kind === 'tag.add' || s.kind === 'tag.remove' || s.kind === 'form.add') &&
    (knownEmail === null || knownEmail.trim().toLowerCase() === subscriber.email.trim().toLowerCase())
  )
}

export const deltaIsEmpty = (d: SubscriberDelta) => Object.keys(d.fields).length === 0 && !d.nameChanged && !d.emailChanged

/** The field values a plan writes, by Kit key as mapped. */
export const plannedValues = (fields: Record<string, PlannedField>): Record<string, string> =>
  Object.fromEntries(Object.values(fields).map((f) => [f.key, f.value]))
