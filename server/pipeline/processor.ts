/**
 * Turns one member event into Kit calls according to the community's mappings: the subscriber
 * first (created or updated only when something changed), then tags, forms, sequences and
 * unsubscribe. Returns the outcome; the consumer records it.
 */
import type { FastifyBaseLogger } from 'fastify'
import { type DeliveryStep, type DeliveryStepAction, type EventMapping, type KitRef, type Mappings, type TagRef } from '#shared/api.ts'
import { hasPlaceholder, type EventType } from '#shared/events.ts'
import { BudgetSpentError } from '../kit/budget.ts'
import type { KitApi, KitClientFactory, KitFieldValues } from '../kit/client.ts'
import { isKitError, KitFieldWarnings, type KitError } from '../kit/errors.ts'
import type { KitSubscriber } from '../kit/types.ts'
import type { CredentialSource, MappingSource } from '../core/ports.ts'
import { reasonWords, type ReasonCode, type ReasonDetails } from '../core/reasons.ts'
import { normaliseEmail, type MemberEvent } from '../core/envelope.ts'
import { putBackForBudget, putBackForTurn, takingTurns, TurnOver, type Turn } from './fairness.ts'
import type { KitIdCache } from './kit-ids.ts'
import { FormDirectory, FormUnavailable, joinSequence, MEMBERSHIP_WORDS, referrerOf, SequenceUnavailable, SubscriberUnknown } from './memberships.ts'
import { createdMark, tagRemovalsFor } from '../core/new-subscriber.ts'
import { describeTag, MappedTags, type TagTarget } from './mapped-tags.ts'
import { DeliveryProgress, resumable } from './progress.ts'
import { LIST_LAG_REASON, type DeliveryQueue, type OrderingMark, type Outcome, type QueuedDelivery } from '../core/queue.ts'
import { backoffDelay, nextListLookup, retriesExpired, type RetryPolicy } from '../core/retry-policy.ts'
import { snapshotMapping } from '../core/snapshot.ts'
import { fillTemplate, mappedFields, memberFieldValues, orderingScope } from '../core/member-fields.ts'
import type { HeldTagRepository, SubscriberKey, SubscriberRepository } from '../core/storage.ts'

export interface ProcessorDeps {
  subscribers: SubscriberRepository
  /** For reading ordering marks; the consumer settles outcomes (and their marks) through it. */
  queue: Pick<DeliveryQueue, 'marks'>
  connections: CredentialSource
  mappings: MappingSource
  kit: KitClientFactory
  ids: KitIdCache
  /** The tag each filled-in templated tag name stands for, once first used. */
  heldTags: HeldTagRepository
  log: FastifyBaseLogger
  retry: RetryPolicy
  now?: () => number
  random?: () => number
}

interface CachedSubscriber {
  subscriberId: number
  email: string
  firstName: string | null
  /** What Kit holds, by field key, as far as the plugin knows (null: Kit has no value). */
  fields: Record<string, string | null>
  /** The subscriber's state when Kit answered with it in this delivery (not remembered between deliveries). */
  state?: string
}


/** One mapped member field to write: Kit's key for it, the label the owner knows, the value. */
interface FieldWrite {
  source: string
  key: string
  label: string
  /** Kit takes strings only; an emptied member field is written as "". */
  value: string
}

const describeScope = (event: MemberEvent) =>
  event.type.startsWith('subscription.')
    ? `subscription ${event.data.subscription?.id}`
    : `access level "${event.data.access?.level}"`

const isEmptyMapping = (m: EventMapping) =>
  m.add_tags.length + m.remove_tags.length + m.add_to_forms.length + m.add_to_sequences.length === 0 && !m.unsubscribe

class Retryable extends Error {
  constructor(readonly reason: ReasonCode) {
    super(reason)
  }
}

/** Kit refused part of the delivery for a reason retrying cannot fix; the message says what to do. */
class Refused extends Error {
  constructor(
    message: string,
    /** The Kit object refused (a form's or a sequence's name), for the failed step. */
    readonly target: string | null = null,
  ) {
    super(message)
  }
}


const STEP_WORDS: Record<DeliveryStepAction, (target: string | null) => string> = {
  'subscriber.created': () => 'subscriber created',
  'subscriber.updated': () => 'subscriber updated',
  'subscriber.unchanged': () => 'subscriber unchanged',
  'subscriber.unconfirmed': (t) => `${t ?? ''} unconfirmed in Kit`,
  'fields.written': (t) => `fields written (${t ?? ''})`,
  'tag.added': (t) => `tag "${t ?? ''}" added`,
  'tag.removed': (t) => `tag "${t ?? ''}" removed`,
  'form.added': (t) => `added to form "${t ?? ''}"`,
  'sequence.added': (t) => `added to sequence "${t ?? ''}"`,
  unsubscribed: () => 'unsubscribed',
  skipped: (t) => `skipped ${t ?? ''}`,
  warning: (t) => `warning about ${t ?? ''}`,
  failed: (t) => `${t ?? 'a step'} failed`,
}

const CHANGES: readonly DeliveryStepAction[] = [
  'subscriber.created', 'subscriber.updated', 'fields.written', 'tag.added', 'tag.removed', 'form.added', 'sequence.added', 'unsubscribed',
]

const step = (action: DeliveryStepAction, target: string | null = null, detail: string | null = null): DeliveryStep => ({
  action,
  target,
  detail,
})

const capitalise = (text: string) => `${text.charAt(0).toUpperCase()}${text.slice(1)}`

/**
 * What one attempt did in Kit, step by step, and what it was doing when it stopped, so a failure
 * can always say which parts were applied.
 */
class StepLog {
  readonly steps: DeliveryStep[] = []
  /** The part being attempted, phrased as its failure: `tag "VIP" not added`. */
  attempting: string | null = null

  add(action: DeliveryStepAction, target: string | null = null, detail: string | null = null): void {
    this.steps.push(step(action, target, detail))
    this.attempting = null
  }

  /** "Subscriber created, tag "New Member" added; " when something was applied, else "". */
  appliedPrefix(): string {
    const words = this.steps.filter((s) => CHANGES.includes(s.action)).map((s) => STEP_WORDS[s.action](s.target))
    return words.length === 0 ? '' : `${capitalise(words.join(', '))}; `
  }
}

/** A delivery that sent nothing, with its reason as its one step. */
const skippedBecause = (reason: ReasonCode, details: ReasonDetails = {}): Outcome => {
  const words = reasonWords(reason, details)
  return { status: 'skipped', reason, kitRequests: 0, lastError: words, steps: [step('skipped', null, words)] }
}

/** "5 minutes", "1 minute", "45 seconds". */
function durationWords(ms: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`
  return ms >= 60_000 ? plural(Math.round(ms / 60_000), 'minute') : plural(Math.max(1, Math.round(ms / 1000)), 'second')
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The fields a Kit error or warning names (by key or label); empty when it names none of them. */
function namedFields(messages: string[], fields: FieldWrite[]): FieldWrite[] {
  return fields.filter((f) =>
    [f.key, f.label].some((name) => {
      const word = new RegExp(`(^|[^A-Za-z0-9_])${escapeRegExp(name)}($|[^A-Za-z0-9_])`, 'i')
      return messages.some((m) => word.test(m))
    }),
  )
}

/**
 * The fields Kit did not write because it did not know their keys: named in `warnings` on a 2xx
 * (all sent fields when the warnings name none), or named by a 422. null for any other error.
 */
function unknownFields(err: unknown, fields: FieldWrite[]): FieldWrite[] | null {
  if (fields.length === 0 || !isKitError(err)) return null
  if (err instanceof KitFieldWarnings) {
    const named = namedFields(err.messages, fields)
    return named.length > 0 ? named : fields
  }
  if (err.kind !== 'validation' || err.status !== 422) return null
  const named = namedFields(err.messages.filter((m) => /field/i.test(m)), fields)
  return named.length > 0 ? named : null
}

/** Kit answering a tag call as if the tag id were wrong: a 404, or a 422 that speaks of the tag. */
const namesTag = (err: KitError) => err.kind === 'not_found' || (err.status === 422 && err.messages.some((m) => /\btag\b/i.test(m)))

const describeFields = (fields: FieldWrite[]) => fields.map((f) => `"${f.label}" (key ${f.key}, from ${f.source})`).join(', ')

const valuesOf = (fields: FieldWrite[]): KitFieldValues => Object.fromEntries(fields.map((f) => [f.key, f.value]))

/** The field values of a Kit answer, as the plugin remembers them. */
const answerFields = (subscriber: KitSubscriber): Record<string, string | null> => ({ ...subscriber.fields })

/** Kit refusing a new email address because another subscriber already has it. */
const addressTaken = (err: KitError) => err.status === 422 && /already|taken|exists/i.test(err.message)

const memberKey = (delivery: QueuedDelivery, credentialId: string): SubscriberKey => ({
  communityId: delivery.communityId,
  credentialId,
  memberId: delivery.memberId,
})

export class DeliveryProcessor {
  private readonly now: () => number
  private readonly random: () => number
  /** Membership calls made by deliveries that gave their slot back for Kit's budget. */
  private readonly progress = new DeliveryProgress()
  /** Which forms are legacy, per credential, learnt when Kit refused a form call. */
  private readonly forms = new FormDirectory()
  private readonly tags: MappedTags

  constructor(private readonly deps: ProcessorDeps) {
    this.now = deps.now ?? Date.now
    this.random = deps.random ?? Math.random
    this.tags = new MappedTags({ ids: deps.ids, mappings: deps.mappings, held: deps.heldTags, now: this.now })
  }

  /** `turn`: the delivery's turn in a consumer slot; once over, it is put back before its next Kit call. */
  async process(delivery: QueuedDelivery, signal?: AbortSignal, turn?: Turn): Promise<Outcome> {
    const event = JSON.parse(delivery.payload) as MemberEvent
    const type = event.type as EventType
    const communityId = delivery.communityId

    const credential = await this.deps.connections.credential(communityId)
    if (!credential) {
      return skippedBecause('not_connected')
    }
    if (credential.status === 'unreadable') return this.held(0, 'key_unreadable')
    if (credential.status === 'invalid') return this.held(0)

    const scope = orderingScope(event)
    const profileScope = `profile:${delivery.memberId}`
    const settledScope = `settled:${delivery.memberId}`
    // Each field the event would write (the member's own, or filled from its subscription or
    // access level) has its own scope: an older event still writes a field no newer applied event
    // wrote (a late sign-up's plan), never one a newer event set.
    const carriedFields = Object.keys(memberFieldValues(event))
    const fieldScope = (source: string) => `field:${delivery.memberId}:${source}`
    const marks = await this.deps.queue.marks(communityId, [...(scope ? [scope] : []), profileScope, settledScope, ...carriedFields.map(fieldScope)])
    if (scope) {
      const mark = marks.get(scope)
      if (mark && mark.eventTime > delivery.eventTime) {
        return skippedBecause('stale_event', { eventId: mark.eventId, scope: describeScope(event) })
      }
    }

    // Every event carries the member's profile as it was at the event's time: the newest one
    // applied wins, so a late, older event never writes back an older name, email or field.
    const profileMark = marks.get(profileScope)
    const staleProfile = profileMark !== undefined && profileMark.eventTime > delivery.eventTime
    // A snapshot is the member as they were when the sync started: once a newer live event has
    // been applied — or found nobody in Kit to apply to — the snapshot has nothing left to say.
    if (type === 'member.snapshot') {
      const newer = [profileMark, marks.get(settledScope)].find((m) => m !== undefined && m.eventTime > delivery.eventTime)
      if (newer) {
        return skippedBecause('stale_snapshot', { eventId: newer.eventId })
      }
    }

    const mappings = await this.deps.mappings.get(communityId)
    const mapping = type === 'member.snapshot' ? snapshotMapping(mappings, event) : mappings.events[type]
    if (!mapping) return skippedBecause('event_not_handled', { eventType: event.type })
    const newerFields = new Set(carriedFields.filter((source) => (marks.get(fieldScope(source))?.eventTime ?? -Infinity) > delivery.eventTime))
    const fieldValues = mappedFields(mappings, event, { skip: newerFields })
    const log = new StepLog()
    const wantsProfile = (type === 'user.signed_up' || type === 'user.updated' || type === 'member.snapshot') && !staleProfile
    if (isEmptyMapping(mapping) && Object.keys(fieldValues).length === 0 && !wantsProfile) {
      return staleProfile && profileMark
        ? skippedBecause('stale_profile', { eventId: profileMark.eventId })
        : skippedBecause('empty_mapping', { eventType: event.type })
    }

    // Only requests Kit answered count: a network failure (refused, reset, timed out) never
    // reached Kit's API, and waits for the budget are not requests at all.
    let kitRequests = 0
    // A delivery never waits for the budget while it holds a consumer slot: it gives the slot
    // back (see failure()) and resumes later without repeating the calls it already made.
    const done = this.progress.of(delivery.id)
    this.progress.finish(delivery.id)
    const kit = resumable(
      this.deps.kit.forKey(credential.apiKey, {
        credentialId: credential.credentialId,
        priority: 'background',
        retryOn429: false,
        waitForBudget: false,
        ...(signal ? { signal } : {}),
        onRequest: (info) => {
          if (info.status !== 'network_error') kitRequests += 1
        },
      }),
      done,
    )

    // This event's scopes are now its own: an older event arriving later is stale in them.
    const markOf = (s: string): OrderingMark => ({ scope: s, eventTime: delivery.eventTime, eventId: delivery.eventId })
    const writtenFields = carriedFields.filter((source) => source in fieldValues)
    const applied = [...(scope ? [markOf(scope)] : []), ...(staleProfile ? [] : [markOf(profileScope)]), ...writtenFields.map((f) => markOf(fieldScope(f)))]
    try {
      const notes = await this.apply(takingTurns(kit, turn), delivery, event, type, mapping, fieldValues, log, staleProfile, done)
      if (notes.waiting) {
        // Nothing was changed and no ordering mark is set: the next attempt decides.
        const { message, lookAgainAt } = notes.waiting
        log.add('warning', null, message)
        return { status: 'retrying', reason: LIST_LAG_REASON, kitRequests, lastError: message, nextAttemptAt: lookAgainAt, steps: log.steps }
      }
      if (notes.skipped) {
        // Nobody in Kit to change: the subscription or access scope is settled by this event, and
        // an older snapshot has nothing to add; but no profile was written, so the member's older
        // live events arriving later (a sign-up) still write theirs.
        log.add('skipped', null, notes.skipped)
        const settled = [...(scope ? [markOf(scope)] : []), markOf(settledScope)]
        return { status: 'skipped', reason: 'not_in_kit', kitRequests, lastError: notes.skipped, steps: log.steps, marks: settled }
      }
      if (staleProfile) {
        const note = newerFields.size > 0
          ? 'A newer event already set this member\'s profile, so this one wrote no name or email, and none of the member fields the newer one had written.'
          : 'A newer event already set this member\'s profile, so this one wrote no name or email.'
        notes.warnings.push(note)
        log.add('warning', null, note)
      }
      return { status: 'succeeded', kitRequests, lastError: notes.warnings.length ? notes.warnings.join(' ') : null, steps: log.steps, marks: applied }
    } catch (err) {
      const outcome = await this.failure(err, delivery, credential.credentialId, kitRequests, log, signal?.aborted === true)
      log.add(outcome.status === 'failed' ? 'failed' : 'warning', err instanceof Refused ? err.target : null, outcome.lastError)
      if (outcome.status !== 'pending') return { ...outcome, steps: log.steps }
      // Put back for the budget: the tag, form, sequence and unsubscribe calls it made are not
      // sent again when it resumes (and a subscriber it created is still known as new), so once
      // it has changed something its ordering marks are set now — an older event of the member
      // claimed meanwhile must not undo what it did.
      this.progress.keep(delivery.id, done)
      return { ...outcome, steps: log.steps, ...(done.size > 0 ? { marks: applied } : {}) }
    }
  }

  private async apply(
    kit: KitApi,
    delivery: QueuedDelivery,
    event: MemberEvent,
    type: EventType,
    mapping: EventMapping,
    fieldValues: Record<string, { key: string; label: string; value: string }>,
    log: StepLog,
    staleProfile: boolean,
    done: Set<string>,
  ): Promise<{ warnings: string[]; skipped?: string; waiting?: { message: string; lookAgainAt: number } }> {
    const warnings: string[] = []
    const email = normaliseEmail(event.data.member.email)

    // Only events that add something (a profile, fields, tags, forms, sequences) create a
    // subscriber; removals and unsubscribes apply to one that already exists, or to nobody.
    const adds =
      type === 'user.signed_up' ||
      type === 'user.updated' ||
      type === 'member.snapshot' ||
      Object.keys(fieldValues).length > 0 ||
      mapping.add_tags.length + mapping.add_to_forms.length + mapping.add_to_sequences.length > 0
    // A stale profile writes nothing and creates no one: its email may be one the member left.
    const options = {
      createIfMissing: type !== 'user.deleted' && adds && !staleProfile,
      inactive: mapping.add_to_forms.length > 0,
      writeProfile: !staleProfile,
    }

    let fields = await this.fieldWrites(kit, delivery, fieldValues, log)
    let subscriber: CachedSubscriber | null
    try {
      subscriber = await this.subscriber(kit, delivery, event, email, fields, options, log, done)
    } catch (err) {
      // Kit did not know a field key (renamed or deleted in Kit since it was learnt): read Kit's
      // field list afresh, once, and write again within this delivery.
      if (unknownFields(err, fields) === null) throw err
      this.deps.ids.forgetFields(kit.credentialId)
      fields = await this.fieldWrites(kit, delivery, fieldValues, log)
      try {
        subscriber = await this.subscriber(kit, delivery, event, email, fields, options, log, done)
      } catch (again) {
        const missing = unknownFields(again, fields)
        if (missing === null || !isKitError(again)) throw again
        const names = missing.length === 1 ? `field ${describeFields(missing)}` : `fields ${describeFields(missing)}`
        throw new Refused(
          `${names} not written: Kit said "${again.message}", also after its field list was read again. ` +
            'Check the field mapping under Field mappings (pick the Kit field again), then Retry.',
        )
      }
    }
    if (!subscriber) {
      // Kit's lookup by email lags its writes: someone created in Kit moments ago (by hand, by a
      // form, through another key) is not listed yet. Look again for a while before concluding.
      const windowWords = durationWords(this.deps.retry.listLagWindowMs)
      const lookAgainAt = nextListLookup(this.deps.retry, delivery.receivedAt, this.now(), delivery.attempts, this.random())
      if (lookAgainAt !== null) {
        return { warnings, waiting: { message: reasonWords(LIST_LAG_REASON, { email, window: windowWords }), lookAgainAt } }
      }
      return { warnings, skipped: reasonWords('not_in_kit', { email, window: windowWords }) }
    }
    const subscriberId = subscriber.subscriberId

    // A tag is applied by its id, whatever it is called in Kit now: picked in the panel, or held
    // since a typed-in or templated name was first created or found in Kit (see MappedTags).
    const tagTargets = (refs: TagRef[]): TagTarget[] =>
      refs.flatMap((ref) => {
        const templated = hasPlaceholder(ref.name)
        const name = templated ? fillTemplate(ref.name, event) : ref.name
        if (name === null || name === '') {
          warnings.push(`Tag "${ref.name}" was left out: the event has no value for its placeholder.`)
          log.add('skipped', ref.name, 'The event has no value for its placeholder.')
          return []
        }
        return [{ name, storedId: templated ? null : ref.id ?? null, templated }]
      })

    // A subscriber Kit created in this delivery has no tags to remove.
    for (const tag of tagTargets([...tagRemovalsFor(mapping.remove_tags, done.has(createdMark(subscriberId)))])) {
      log.attempting = `tag "${tag.name}" not removed`
      const tagId = await this.tags.idFor(kit, delivery.communityId, tag, 'remove')
      const removed = tagId !== null && (await this.tagCall(kit, delivery, tag, tagId, 'remove', (id) => kit.untagSubscriber(id, subscriberId)))
      if (removed) {
        log.add('tag.removed', tag.name)
      } else if (tag.storedId !== null) {
        const note = `${describeTag(tag)} no longer exists in Kit, so there was nothing to remove: pick it again in the ${type} mapping.`
        warnings.push(capitalise(note))
        log.add('warning', tag.name, capitalise(note))
      } else {
        log.attempting = null
      }
    }
    for (const tag of tagTargets(mapping.add_tags)) {
      log.attempting = `tag "${tag.name}" not added`
      const tagId = await this.tags.idFor(kit, delivery.communityId, tag, 'add')
      if (tagId === null || !(await this.tagCall(kit, delivery, tag, tagId, 'add', (id) => kit.tagSubscriber(id, subscriberId)))) {
        throw new Refused(`${describeTag(tag)} no longer exists in Kit: pick it again in the ${type} mapping, then Retry.`)
      }
      log.add('tag.added', tag.name)
    }
    const referrer = referrerOf(event.source)
    for (const form of mapping.add_to_forms) {
      log.attempting = `not added to form "${form.name}"`
      try {
        await this.forms.join(kit, form.id, subscriberId, referrer)
      } catch (err) {
        if (err instanceof SubscriberUnknown) return this.subscriberGone(kit, delivery)
        if (err instanceof FormUnavailable) throw await this.formRefused(kit, subscriber, form, err, type, log)
        throw err
      }
      log.add('form.added', form.name)
    }
    for (const sequence of mapping.add_to_sequences) {
      log.attempting = `not added to sequence "${sequence.name}"`
      try {
        await joinSequence(kit, sequence.id, subscriberId)
      } catch (err) {
        if (err instanceof SubscriberUnknown) return this.subscriberGone(kit, delivery)
        if (err instanceof SequenceUnavailable) throw new Refused(MEMBERSHIP_WORDS.sequenceRefused(sequence.name, err, type), sequence.name)
        throw err
      }
      log.add('sequence.added', sequence.name)
    }
    if (mapping.unsubscribe) {
      log.attempting = 'not unsubscribed'
      await kit.unsubscribe(subscriberId)
      log.add('unsubscribed')
    }
    return { warnings }
  }

  /**
   * Kit's key for each mapped field, learnt from Kit (its field list, or its answer when the field
   * is created on first use). A key Kit gave that differs from the saved mapping's is stored.
   */
  private async fieldWrites(
    kit: KitApi,
    delivery: QueuedDelivery,
    fieldValues: Record<string, { key: string; label: string; value: string }>,
    log: StepLog,
  ): Promise<FieldWrite[]> {
    const writes: FieldWrite[] = []
    for (const [source, f] of Object.entries(fieldValues)) {
      log.attempting = `field "${f.label}" not found or created in Kit`
      const key = await this.deps.ids.fieldKey(kit, f.key, f.label)
      if (key !== f.key) await this.deps.mappings.learnFieldKey(delivery.communityId, source, key)
      writes.push({ source, key, label: f.label, value: f.value })
    }
    log.attempting = null
    return writes
  }

  /**
   * Tags or untags with `tagId`; true when Kit did it, false when the tag no longer exists (a
   * stored id Kit does not know, or a name no tag has any more). When Kit answers as if the tag id
   * were wrong (404, or a 422 about the tag), the credential's tag list is read again once and the
   * call is repeated within this delivery with the id Kit has now for that name, held from then
   * on (a tag the document gives an id is never recreated). When the tag is
   * fine, it is the subscriber Kit no longer knows: forgotten, and the delivery is retried.
   */
  private async tagCall(
    kit: KitApi,
    delivery: QueuedDelivery,
    tag: TagTarget,
    tagId: number,
    mode: 'add' | 'remove',
    call: (id: number) => Promise<void>,
  ): Promise<boolean> {
    let first: KitError
    try {
      await call(tagId)
      return true
    } catch (err) {
      if (!isKitError(err) || !namesTag(err)) throw err
      first = err
    }
    await this.deps.ids.reloadTags(kit)
    const fresh = await this.tags.afterMiss(kit, delivery.communityId, tag, tagId, mode)
    if (fresh === null) return false
    if (fresh === tagId) {
      if (first.kind !== 'not_found') throw first
      return this.subscriberGone(kit, delivery)
    }
    try {
      await call(fresh)
      return true
    } catch (again) {
      if (isKitError(again) && again.kind === 'not_found') return this.subscriberGone(kit, delivery)
      throw again
    }
  }

  /**
   * Kit refuses to add anyone to a mapped form (archived or deleted): the delivery fails naming the
   * form, and says so when the person is left unconfirmed in Kit — created `inactive` for the form
   * to confirm, they get no email until a form that works takes them.
   */
  private async formRefused(kit: KitApi, subscriber: CachedSubscriber, form: KitRef, err: FormUnavailable, type: EventType, log: StepLog): Promise<Refused> {
    const unconfirmed = (subscriber.state ?? (await kit.getSubscriber(subscriber.subscriberId))?.state) === 'inactive'
    if (unconfirmed) log.add('subscriber.unconfirmed', subscriber.email, MEMBERSHIP_WORDS.unconfirmed(subscriber.email))
    return new Refused(MEMBERSHIP_WORDS.formRefused(form.name, err, type, unconfirmed ? subscriber.email : null), form.name)
  }

  /** Kit no longer knows the subscriber id the plugin remembered: forget it and try again. */
  private async subscriberGone(kit: KitApi, delivery: QueuedDelivery): Promise<never> {
    await this.forgetSubscriber(delivery, kit.credentialId)
    throw new Retryable('subscriber_gone')
  }

  private async cached(delivery: QueuedDelivery, credentialId: string): Promise<CachedSubscriber | null> {
    const row = await this.deps.subscribers.get(memberKey(delivery, credentialId))
    if (!row) return null
    return { subscriberId: row.subscriberId, email: row.email, firstName: row.firstName, fields: JSON.parse(row.fields) as Record<string, string | null> }
  }

  private remember(delivery: QueuedDelivery, credentialId: string, s: CachedSubscriber): Promise<void> {
    return this.deps.subscribers.save({
      ...memberKey(delivery, credentialId),
      email: s.email,
      subscriberId: s.subscriberId,
      firstName: s.firstName,
      fields: JSON.stringify(s.fields),
      updatedAt: this.now(),
    })
  }

  private forgetSubscriber(delivery: QueuedDelivery, credentialId: string): Promise<void> {
    return this.deps.subscribers.forget(memberKey(delivery, credentialId))
  }

  /**
   * The member's Kit subscriber. Known and unchanged: no request. Known with changes (fields,
   * first name, a new email address): one PUT.
   * Unknown: one upsert (plus a PUT when Kit kept an existing subscriber's old field values, or
   * answered 202 and applies them later). When Kit answers with warnings about fields, what it did
   * write is remembered before the error goes up, so a second call writes only what is missing.
   */
  private async subscriber(
    kit: KitApi,
    delivery: QueuedDelivery,
    event: MemberEvent,
    email: string,
    fieldWrites: FieldWrite[],
    options: { createIfMissing: boolean; inactive: boolean; writeProfile: boolean },
    log: StepLog,
    done: Set<string>,
  ): Promise<CachedSubscriber | null> {
    const firstName = event.data.member.first_name ?? null
    const fields = valuesOf(fieldWrites)
    const labelsOf = (keys: string[]) => fieldWrites.filter((f) => keys.includes(f.key)).map((f) => f.label).join(', ')
    const known = await this.cached(delivery, kit.credentialId)
    if (known) {
      const changedFields = Object.fromEntries(Object.entries(fields).filter(([k, v]) => (known.fields[k] ?? '') !== v))
      const nameChanged = options.writeProfile && firstName !== null && firstName !== known.firstName
      const emailChanged = options.writeProfile && known.email !== email
      const address = emailChanged ? email : known.email
      if (Object.keys(changedFields).length === 0 && !nameChanged && !emailChanged) {
        log.add('subscriber.unchanged', known.email)
        return known
      }
      log.attempting = 'subscriber not updated'
      let answer: KitSubscriber
      try {
        answer = await kit.updateSubscriber(known.subscriberId, {
          ...(emailChanged ? { email } : {}),
          ...(nameChanged ? { firstName } : {}),
          ...(Object.keys(changedFields).length ? { fields: changedFields } : {}),
        })
      } catch (err) {
        if (err instanceof KitFieldWarnings) {
          await this.remember(delivery, kit.credentialId, {
            ...known,
            email: address,
            firstName: nameChanged ? firstName : known.firstName,
            fields: { ...known.fields, ...answerFields(err.subscriber) },
          })
          const refused = (unknownFields(err, fieldWrites) ?? []).map((f) => f.key)
          const written = Object.keys(changedFields).filter((k) => !refused.includes(k))
          if (nameChanged || emailChanged || written.length > 0) log.add('subscriber.updated', address, emailChanged ? `Email changed from ${known.email}.` : null)
          if (written.length > 0) log.add('fields.written', labelsOf(written))
          throw err
        }
        const gone = isKitError(err) && err.kind === 'not_found'
        // Only Kit saying the address belongs to someone else means "use that subscriber"; any
        // other refusal of the new address fails with Kit's message.
        const emailTaken = emailChanged && isKitError(err) && err.kind === 'validation' && unknownFields(err, fieldWrites) === null && addressTaken(err)
        if (!gone && !emailTaken) throw err
        await this.forgetSubscriber(delivery, kit.credentialId)
        return this.subscriber(kit, delivery, event, email, fieldWrites, options, log, done)
      }
      const next = {
        ...known,
        email: address,
        firstName: nameChanged ? firstName : known.firstName,
        fields: { ...known.fields, ...answerFields(answer), ...changedFields },
      }
      await this.remember(delivery, kit.credentialId, next)
      log.add('subscriber.updated', address, emailChanged ? `Email changed from ${known.email}.` : null)
      if (Object.keys(changedFields).length) log.add('fields.written', labelsOf(Object.keys(changedFields)))
      return next
    }

    if (!options.createIfMissing) {
      const found = await kit.findSubscriberByEmail(email)
      if (!found) return null
      const stored = answerFields(found)
      const changed = Object.fromEntries(Object.entries(fields).filter(([k, v]) => (stored[k] ?? '') !== v))
      let subscriber: CachedSubscriber = { subscriberId: found.id, email, firstName: found.first_name, fields: stored }
      if (Object.keys(changed).length === 0) {
        log.add('subscriber.unchanged', email)
      } else {
        // An older event's member fields that no newer event wrote still land (its name and
        // email do not).
        log.attempting = 'member fields not written'
        const answer = await kit.updateSubscriber(found.id, { fields: changed })
        subscriber = { ...subscriber, fields: { ...stored, ...answerFields(answer), ...changed } }
        log.add('subscriber.updated', email)
        log.add('fields.written', labelsOf(Object.keys(changed)))
      }
      // Remembered, so a delivery put back for the budget (or the member's next event) needs no
      // second lookup; a stale event's address may be one the member left, so it is not kept.
      if (options.writeProfile) await this.remember(delivery, kit.credentialId, subscriber)
      return subscriber
    }

    log.attempting = 'subscriber not written'
    let subscriber: KitSubscriber
    let created: boolean
    let fieldsDeferred: boolean
    try {
      ;({ subscriber, created, fieldsDeferred } = await kit.upsertSubscriber({
        email,
        ...(firstName !== null ? { firstName } : {}),
        ...(options.inactive ? { state: 'inactive' as const } : {}),
        ...(Object.keys(fields).length ? { fields } : {}),
      }))
    } catch (err) {
      if (err instanceof KitFieldWarnings) {
        const s = err.subscriber
        if (err.answerStatus === 201) done.add(createdMark(s.id))
        await this.remember(delivery, kit.credentialId, { subscriberId: s.id, email, firstName: firstName ?? s.first_name, fields: answerFields(s) })
        log.add(err.answerStatus === 201 ? 'subscriber.created' : 'subscriber.updated', email)
      }
      throw err
    }
    if (created) done.add(createdMark(subscriber.id))
    log.add(created ? 'subscriber.created' : 'subscriber.updated', email)
    // Kit may keep an existing subscriber's old values: those are written with one PUT. A subscriber
    // it created gets the fields sent, even when it writes them after answering (202, more than ten).
    const stale = created && fieldsDeferred ? {} : Object.fromEntries(Object.entries(fields).filter(([k, v]) => (subscriber.fields[k] ?? '') !== v))
    if (Object.keys(stale).length > 0) {
      log.attempting = `fields not written (${labelsOf(Object.keys(stale))})`
      try {
        await kit.updateSubscriber(subscriber.id, { fields: stale })
      } catch (err) {
        await this.remember(delivery, kit.credentialId, { subscriberId: subscriber.id, email, firstName: firstName ?? subscriber.first_name, fields: answerFields(subscriber) })
        throw err
      }
    }
    const next: CachedSubscriber = {
      subscriberId: subscriber.id,
      email,
      firstName: firstName ?? subscriber.first_name,
      fields: { ...answerFields(subscriber), ...fields },
      state: subscriber.state,
    }
    await this.remember(delivery, kit.credentialId, next)
    if (Object.keys(fields).length) log.add('fields.written', labelsOf(Object.keys(fields)))
    return next
  }

  private held(kitRequests: number, reason: ReasonCode = 'key_rejected'): Outcome {
    return { status: 'held', reason, kitRequests, lastError: reasonWords(reason) }
  }

  private backoff(attempts: number): number {
    return backoffDelay(this.deps.retry, attempts, this.random())
  }

  /** `aborted`: the consumer stopped this attempt (shutdown or its deadline); nothing went wrong in Kit. */
  private async failure(err: unknown, delivery: QueuedDelivery, credentialId: string, kitRequests: number, log: StepLog, aborted: boolean): Promise<Outcome> {
    const now = this.now()
    const expired = retriesExpired(this.deps.retry, delivery.receivedAt, now)
    // A failed delivery always says what this attempt had already applied in Kit.
    const failed = (message: string): Outcome => {
      const applied = log.appliedPrefix()
      return { status: 'failed', kitRequests, lastError: applied ? `${applied}${message}` : capitalise(message) }
    }
    const retryLater = (reason: ReasonCode, delay: number, details: ReasonDetails = {}): Outcome => {
      const message = reasonWords(reason, details)
      return expired
        ? failed(`${message} Gave up after retrying for a day; use Retry once Kit works again.`)
        : { status: 'retrying', reason, kitRequests, lastError: message, nextAttemptAt: now + delay }
    }

    if (err instanceof BudgetSpentError) return putBackForBudget(err, delivery, kitRequests)
    if (err instanceof TurnOver) return putBackForTurn(delivery, kitRequests)
    if (err instanceof Retryable) return retryLater(err.reason, 1000)
    if (err instanceof Refused) return failed(err.message)
    if (!isKitError(err)) {
      if (aborted) return retryLater('attempt_stopped', this.backoff(delivery.attempts))
      this.deps.log.error({ err, deliveryId: delivery.id }, 'delivery failed unexpectedly')
      return retryLater('unexpected_error', this.backoff(delivery.attempts))
    }
    const kitErr: KitError = err
    switch (kitErr.kind) {
      case 'invalid_credentials':
        await this.deps.connections.markInvalid(delivery.communityId, credentialId)
        return this.held(kitRequests)
      case 'rate_limited':
        return retryLater('kit_rate_limited', Math.round(this.deps.retry.rateLimitWaitMs + this.random() * 1000))
      case 'unavailable':
        return retryLater('kit_unavailable', this.backoff(delivery.attempts), { message: kitErr.message })
      case 'not_found':
        // Tags, forms and sequences settle their own 404s where they are called; what is left can
        // only be the subscriber: forgotten, and nothing else (the key's tag and field ids stay).
        await this.forgetSubscriber(delivery, credentialId)
        return delivery.attempts >= 3
          ? failed(`Kit could not find what this event refers to: ${kitErr.message}`)
          : retryLater('subscriber_gone', 1000)
      case 'validation':
        return failed(`${log.attempting ?? 'the change was not applied'}: Kit refused it: ${kitErr.message}`)
    }
  }
}
