/**
 * Turns one member event into Kit calls according to the community's mappings: the subscriber
 * first (created or updated only when something changed), then tags, forms, sequences and
 * unsubscribe. Returns the outcome; the consumer records it.
 */
import { and, eq } from 'drizzle-orm'
import type { FastifyBaseLogger } from 'fastify'
import type { DeliveryStep, DeliveryStepAction, EventMapping, Mappings, TagRef } from '../../shared/api.ts'
import type { EventType } from '../../shared/events.ts'
import type { Db } from '../db/index.ts'
import { kitSubscribers, orderingMarks } from '../db/schema/index.ts'
import type { KitApi, KitClientFactory } from '../kit/client.ts'
import { isKitError, type KitError } from '../kit/errors.ts'
import { NOT_CONNECTED_REASON, type ConnectionService } from '../services/connections.ts'
import type { MappingService } from '../services/mappings.ts'
import { normaliseEmail, type MemberEvent } from './envelope.ts'
import type { KitIdCache } from './kit-ids.ts'
import type { Outcome, QueuedDelivery } from './queue.ts'

export interface RetryPolicy {
  /** First backoff for an unavailable Kit, doubled each attempt, capped, with full jitter. */
  baseMs: number
  maxMs: number
  /** Give up (failed) once an event has been retried this long. */
  giveUpAfterMs: number
  /** Wait after a 429: Kit's window. */
  rateLimitWaitMs: number
}

export interface ProcessorDeps {
  db: Db
  connections: ConnectionService
  mappings: MappingService
  kit: KitClientFactory
  ids: KitIdCache
  log: FastifyBaseLogger
  retry: RetryPolicy
  now?: () => number
  random?: () => number
}

interface CachedSubscriber {
  subscriberId: number
  email: string
  firstName: string | null
  fields: Record<string, string | null>
}

const REJECTED_HELD = 'Waiting: Kit no longer accepts the saved API key. Save a working key under Connection and this delivery resumes.'
const UNREADABLE_HELD = 'Waiting: the saved Kit key can no longer be read (the server\'s encryption key changed). Paste the key again under Connection and this delivery resumes.'

const PLACEHOLDER = /\{\{\s*([^}]+?)\s*\}\}/g

/** Fills `{{access.level}}`, `{{subscription.plan}}`, `{{member.fields.mk_x}}`; null when a value is missing. */
export function fillTemplate(name: string, event: MemberEvent): string | null {
  let missing = false
  const filled = name.replace(PLACEHOLDER, (_m, path: string) => {
    let value: string | null | undefined
    if (path === 'access.level') value = event.data.access?.level
    else if (path === 'subscription.plan') value = event.data.subscription?.plan
    else if (path.startsWith('member.fields.')) value = event.data.member.fields?.[path.slice('member.fields.'.length)]
    if (typeof value !== 'string' || value.trim() === '') {
      missing = true
      return ''
    }
    return value.trim()
  })
  return missing ? null : filled.trim()
}

/** The ordering scope an event belongs to: an older event never undoes a newer one in the same scope. */
export function orderingScope(event: MemberEvent): string | null {
  if (event.type.startsWith('subscription.') && event.data.subscription?.id) return `subscription:${event.data.subscription.id}`
  if (event.type.startsWith('access.') && event.data.access?.level) return `access:${event.data.member.id}:${event.data.access.level}`
  return null
}

const describeScope = (event: MemberEvent) =>
  event.type.startsWith('subscription.')
    ? `subscription ${event.data.subscription?.id}`
    : `access level "${event.data.access?.level}"`

const isEmptyMapping = (m: EventMapping) =>
  m.add_tags.length + m.remove_tags.length + m.add_to_forms.length + m.add_to_sequences.length === 0 && !m.unsubscribe

class Retryable extends Error {}

const step = (action: DeliveryStepAction, target: string | null = null, detail: string | null = null): DeliveryStep => ({
  action,
  target,
  detail,
})

const memberRow = (delivery: QueuedDelivery, credentialId: string) =>
  and(
    eq(kitSubscribers.communityId, delivery.communityId),
    eq(kitSubscribers.credentialId, credentialId),
    eq(kitSubscribers.memberId, delivery.memberId),
  )

export class DeliveryProcessor {
  private readonly now: () => number
  private readonly random: () => number

  constructor(private readonly deps: ProcessorDeps) {
    this.now = deps.now ?? Date.now
    this.random = deps.random ?? Math.random
  }

  async process(delivery: QueuedDelivery, signal?: AbortSignal): Promise<Outcome> {
    const event = JSON.parse(delivery.payload) as MemberEvent
    const type = event.type as EventType
    const communityId = delivery.communityId

    const credential = this.deps.connections.credential(communityId)
    if (!credential) {
      return { status: 'skipped', kitRequests: 0, lastError: NOT_CONNECTED_REASON, steps: [step('skipped', null, NOT_CONNECTED_REASON)] }
    }
    if (credential.status === 'unreadable') return this.held(0, UNREADABLE_HELD)
    if (credential.status === 'invalid') return this.held(0)

    const scope = orderingScope(event)
    if (scope) {
      const mark = this.deps.db
        .select()
        .from(orderingMarks)
        .where(and(eq(orderingMarks.communityId, communityId), eq(orderingMarks.scope, scope)))
        .get()
      if (mark && mark.eventTime > delivery.eventTime) {
        const reason = `Stale: a newer event (${mark.eventId}) for ${describeScope(event)} was already applied, so this older one was not.`
        return { status: 'skipped', kitRequests: 0, lastError: reason, steps: [step('skipped', null, reason)] }
      }
    }

    const mappings = this.deps.mappings.get(communityId)
    const mapping = mappings.events[type]
    if (!mapping) return skippedBecause(`Event type ${event.type} is not handled.`)
    const fieldValues = mappedFields(mappings, event)
    const wantsProfile = type === 'user.signed_up' || type === 'user.updated'
    if (isEmptyMapping(mapping) && Object.keys(fieldValues).length === 0 && !wantsProfile) {
      return skippedBecause(`Nothing is mapped for ${event.type}.`)
    }

    // Only requests Kit answered count: a network failure (refused, reset, timed out) never
    // reached Kit's API, and waits for the budget are not requests at all.
    let kitRequests = 0
    const kit = this.deps.kit.forKey(credential.apiKey, {
      credentialId: credential.credentialId,
      priority: 'background',
      retryOn429: false,
      ...(signal ? { signal } : {}),
      onRequest: (info) => {
        if (info.status !== 'network_error') kitRequests += 1
      },
    })

    const steps: DeliveryStep[] = []
    try {
      const notes = await this.apply(kit, delivery, event, type, mapping, fieldValues, steps)
      const commit = scope ? () => this.mark(communityId, scope, delivery) : undefined
      if (notes.skipped) {
        steps.push(step('skipped', null, notes.skipped))
        return { status: 'skipped', kitRequests, lastError: notes.skipped, steps, ...(commit ? { commit } : {}) }
      }
      return { status: 'succeeded', kitRequests, lastError: notes.warnings.length ? notes.warnings.join(' ') : null, steps, ...(commit ? { commit } : {}) }
    } catch (err) {
      const outcome = this.failure(err, delivery, credential.credentialId, kitRequests, signal?.aborted === true)
      return { ...outcome, steps: [...steps, step('failed', null, outcome.lastError)] }
    }
  }

  private async apply(
    kit: KitApi,
    delivery: QueuedDelivery,
    event: MemberEvent,
    type: EventType,
    mapping: EventMapping,
    fieldValues: Record<string, { key: string; label: string; value: string | null }>,
    steps: DeliveryStep[],
  ): Promise<{ warnings: string[]; skipped?: string }> {
    const warnings: string[] = []
    const warn = (text: string) => {
      warnings.push(text)
      steps.push(step('warning', null, text))
    }
    const email = normaliseEmail(event.data.member.email)

    const fields: Record<string, string | null> = {}
    const labels: Record<string, string> = {}
    for (const f of Object.values(fieldValues)) {
      const key = await this.deps.ids.fieldKey(kit, f.key, f.label)
      fields[key] = f.value
      labels[key] = f.label
    }

    // Only events that add something (a profile, fields, tags, forms, sequences) create a
    // subscriber; removals and unsubscribes apply to one that already exists, or to nobody.
    const adds =
      type === 'user.signed_up' ||
      type === 'user.updated' ||
      Object.keys(fields).length > 0 ||
      mapping.add_tags.length + mapping.add_to_forms.length + mapping.add_to_sequences.length > 0
    const subscriber = await this.subscriber(kit, delivery, event, email, fields, {
      createIfMissing: type !== 'user.deleted' && adds,
      inactive: mapping.add_to_forms.length > 0,
      steps,
      labels,
    })
    if (!subscriber) return { warnings, skipped: `${email} is not a Kit subscriber, so there was nothing to change.` }

    const tagNames = (refs: TagRef[]) =>
      refs.flatMap((ref) => {
        const name = fillTemplate(ref.name, event)
        if (name === null || name === '') {
          warn(`Tag "${ref.name}" was left out: the event has no value for its placeholder.`)
          return []
        }
        return [name]
      })

    for (const name of tagNames(mapping.remove_tags)) {
      const tagId = await this.deps.ids.existingTagId(kit, name)
      if (tagId !== null && (await this.untag(kit, tagId, subscriber.subscriberId))) steps.push(step('tag.removed', name))
    }
    for (const name of tagNames(mapping.add_tags)) {
      const tagId = await this.deps.ids.tagId(kit, name)
      await this.notFoundRetries(kit, delivery, () => kit.tagSubscriber(tagId, subscriber.subscriberId))
      steps.push(step('tag.added', name))
    }
    for (const form of mapping.add_to_forms) {
      await kit.addSubscriberToForm(form.id, email)
      steps.push(step('form.added', form.name))
    }
    for (const sequence of mapping.add_to_sequences) {
      await kit.addSubscriberToSequence(sequence.id, email)
      steps.push(step('sequence.added', sequence.name))
    }
    if (mapping.unsubscribe) {
      await kit.unsubscribe(subscriber.subscriberId)
      steps.push(step('unsubscribed', email))
    }
    return { warnings }
  }

  /** Whether the tag was removed; false when Kit did not have it on the subscriber (or at all). */
  private async untag(kit: KitApi, tagId: number, subscriberId: number): Promise<boolean> {
    try {
      await kit.untagSubscriber(tagId, subscriberId)
      return true
    } catch (err) {
      if (!(isKitError(err) && err.kind === 'not_found')) throw err
      this.deps.ids.forget(kit.credentialId)
      return false
    }
  }

  /** A 404 on a cached id: forget the caches so the next attempt resolves them afresh. */
  private async notFoundRetries(kit: KitApi, delivery: QueuedDelivery, call: () => Promise<void>): Promise<void> {
    try {
      await call()
    } catch (err) {
      if (isKitError(err) && err.kind === 'not_found') {
        this.deps.ids.forget(kit.credentialId)
        this.forgetSubscriber(delivery, kit.credentialId)
        throw new Retryable('Kit no longer had a tag or subscriber we knew of; retrying with fresh ids.')
      }
      throw err
    }
  }

  private cached(delivery: QueuedDelivery, credentialId: string): CachedSubscriber | null {
    const row = this.deps.db
      .select()
      .from(kitSubscribers)
      .where(memberRow(delivery, credentialId))
      .get()
    if (!row) return null
    return { subscriberId: row.subscriberId, email: row.email, firstName: row.firstName, fields: JSON.parse(row.fields) as Record<string, string | null> }
  }

  private remember(delivery: QueuedDelivery, credentialId: string, s: CachedSubscriber): void {
    const values = { email: s.email, subscriberId: s.subscriberId, firstName: s.firstName, fields: JSON.stringify(s.fields), updatedAt: this.now() }
    this.deps.db
      .insert(kitSubscribers)
      .values({ communityId: delivery.communityId, credentialId, memberId: delivery.memberId, ...values })
      .onConflictDoUpdate({ target: [kitSubscribers.communityId, kitSubscribers.credentialId, kitSubscribers.memberId], set: values })
      .run()
  }

  private forgetSubscriber(delivery: QueuedDelivery, credentialId: string): void {
    this.deps.db
      .delete(kitSubscribers)
      .where(memberRow(delivery, credentialId))
      .run()
  }

  /**
   * The member's Kit subscriber. Known and unchanged: no request. Known with changes (fields,
   * first name, a new email address): one PUT.
   * Unknown: one upsert (plus a PUT when Kit kept an existing subscriber's old field values).
   */
  private async subscriber(
    kit: KitApi,
    delivery: QueuedDelivery,
    event: MemberEvent,
    email: string,
    fields: Record<string, string | null>,
    options: { createIfMissing: boolean; inactive: boolean; steps: DeliveryStep[]; labels: Record<string, string> },
  ): Promise<CachedSubscriber | null> {
    const { steps, labels } = options
    const written = (keys: string[]) => {
      if (keys.length > 0) steps.push(step('fields.written', keys.map((k) => labels[k] ?? k).join(', ')))
    }
    const firstName = event.data.member.first_name ?? null
    const known = this.cached(delivery, kit.credentialId)
    if (known) {
      const changedFields = Object.fromEntries(Object.entries(fields).filter(([k, v]) => (known.fields[k] ?? null) !== v))
      const nameChanged = firstName !== null && firstName !== known.firstName
      const emailChanged = known.email !== email
      if (Object.keys(changedFields).length === 0 && !nameChanged && !emailChanged) {
        steps.push(step('subscriber.unchanged', email))
        return known
      }
      try {
        await kit.updateSubscriber(known.subscriberId, {
          ...(emailChanged ? { email } : {}),
          ...(nameChanged ? { firstName } : {}),
          ...(Object.keys(changedFields).length ? { fields: changedFields } : {}),
        })
      } catch (err) {
        const gone = isKitError(err) && err.kind === 'not_found'
        const emailTaken = emailChanged && isKitError(err) && err.kind === 'validation'
        if (!gone && !emailTaken) throw err
        this.forgetSubscriber(delivery, kit.credentialId)
        return this.subscriber(kit, delivery, event, email, fields, options)
      }
      steps.push(step('subscriber.updated', email, emailChanged ? `Email changed from ${known.email}.` : null))
      written(Object.keys(changedFields))
      const next = {
        ...known,
        email,
        firstName: nameChanged ? firstName : known.firstName,
        fields: { ...known.fields, ...changedFields },
      }
      this.remember(delivery, kit.credentialId, next)
      return next
    }

    if (!options.createIfMissing) {
      const found = await kit.findSubscriberByEmail(email)
      if (found) steps.push(step('subscriber.unchanged', email))
      return found ? { subscriberId: found.id, email, firstName: found.first_name, fields: found.fields } : null
    }

    const { subscriber, created } = await kit.upsertSubscriber({
      email,
      ...(firstName !== null ? { firstName } : {}),
      ...(options.inactive ? { state: 'inactive' as const } : {}),
      ...(Object.keys(fields).length ? { fields } : {}),
    })
    const stale = Object.fromEntries(Object.entries(fields).filter(([k, v]) => (subscriber.fields?.[k] ?? null) !== v))
    if (Object.keys(stale).length > 0) await kit.updateSubscriber(subscriber.id, { fields: stale })
    steps.push(step(created ? 'subscriber.created' : 'subscriber.updated', email))
    written(Object.keys(fields))
    const next: CachedSubscriber = {
      subscriberId: subscriber.id,
      email,
      firstName: firstName ?? subscriber.first_name,
      fields: { ...subscriber.fields, ...fields },
    }
    this.remember(delivery, kit.credentialId, next)
    return next
  }

  private mark(communityId: string, scope: string, delivery: QueuedDelivery): void {
    this.deps.db
      .insert(orderingMarks)
      .values({ communityId, scope, eventTime: delivery.eventTime, eventId: delivery.eventId })
      .onConflictDoUpdate({
        target: [orderingMarks.communityId, orderingMarks.scope],
        set: { eventTime: delivery.eventTime, eventId: delivery.eventId },
      })
      .run()
  }

  private held(kitRequests: number, reason = REJECTED_HELD): Outcome {
    return { status: 'held', kitRequests, lastError: reason }
  }

  private backoff(attempts: number): number {
    const { baseMs, maxMs } = this.deps.retry
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 20))
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2)
  }

  /** `aborted`: the consumer stopped this attempt (shutdown or its deadline); nothing went wrong in Kit. */
  private failure(err: unknown, delivery: QueuedDelivery, credentialId: string, kitRequests: number, aborted: boolean): Outcome {
    const now = this.now()
    const expired = now - delivery.receivedAt > this.deps.retry.giveUpAfterMs
    const retryLater = (message: string, delay: number): Outcome =>
      expired
        ? { status: 'failed', kitRequests, lastError: `${message} Gave up after retrying for a day; use Retry once Kit works again.` }
        : { status: 'retrying', kitRequests, lastError: message, nextAttemptAt: now + delay }

    if (err instanceof Retryable) return retryLater(err.message, 1000)
    if (!isKitError(err)) {
      if (aborted) return retryLater('This attempt was stopped before Kit answered; it will be retried.', this.backoff(delivery.attempts))
      this.deps.log.error({ err, deliveryId: delivery.id }, 'delivery failed unexpectedly')
      return retryLater('An unexpected error interrupted this delivery; it will be retried.', this.backoff(delivery.attempts))
    }
    const kitErr: KitError = err
    switch (kitErr.kind) {
      case 'invalid_credentials':
        this.deps.connections.markInvalid(delivery.communityId, credentialId)
        return this.held(kitRequests)
      case 'rate_limited':
        return retryLater('Kit asked us to slow down (rate limit); waiting for its window before retrying.', this.deps.retry.rateLimitWaitMs + this.random() * 1000)
      case 'unavailable':
        return retryLater(`Kit was unavailable (${kitErr.message}); retrying with backoff.`, this.backoff(delivery.attempts))
      case 'not_found':
        this.deps.ids.forget(credentialId)
        this.forgetSubscriber(delivery, credentialId)
        return delivery.attempts >= 3
          ? { status: 'failed', kitRequests, lastError: `Kit could not find what this event refers to: ${kitErr.message}` }
          : retryLater('Kit no longer had a tag or subscriber we knew of; retrying with fresh ids.', 1000)
      case 'validation':
        return { status: 'failed', kitRequests, lastError: `Kit refused the change: ${kitErr.message}` }
    }
  }
}

const skippedBecause = (reason: string): Outcome => ({ status: 'skipped', kitRequests: 0, lastError: reason, steps: [step('skipped', null, reason)] })

/** The mapped `mk_*` fields present in the event, keyed by source. */
export function mappedFields(mappings: Mappings, event: MemberEvent): Record<string, { key: string; label: string; value: string | null }> {
  const out: Record<string, { key: string; label: string; value: string | null }> = {}
  const given = event.data.member.fields ?? {}
  for (const f of mappings.fields) {
    if (!(f.source in given)) continue
    const value = given[f.source]
    out[f.source] = { key: f.kit_field.key, label: f.kit_field.label, value: value === undefined ? null : value }
  }
  return out
}
