/**
 * The first step of every plan: the member's Kit subscriber, created, updated or left as it is,
 * and the plugin's memory of what it last wrote to Kit for the member (kit_subscribers).
 */
import type { KitApi, KitSubscriber } from '../core/kit.ts'
import { isKitError, KitFieldWarnings } from '../kit/errors.ts'
import { deltaIsEmpty, subscriberDelta, type PlannedField, type SubscriberStep } from '../core/planner.ts'
import { createdMark } from '../core/new-subscriber.ts'
import type { MappingSource } from '../core/ports.ts'
import type { QueuedDelivery } from '../core/queue.ts'
import type { SubscriberKey, SubscriberRepository } from '../core/storage.ts'
import type { KitIdCache } from './kit-ids.ts'
import { addressTaken, answerFields, labelsOf, unknownFields, valuesOf, type FieldWrite, type StepLog } from './step-log.ts'

export interface CachedSubscriber {
  subscriberId: number
  email: string
  firstName: string | null
  /** What Kit holds, by field key, as far as the plugin knows (null: Kit has no value). */
  fields: Record<string, string | null>
  /** Kit's answer with the subscriber in this delivery, if it gave one (never remembered between deliveries). */
  answer?: KitSubscriber
}

export interface SubscriberWriterDeps {
  subscribers: SubscriberRepository
  mappings: Pick<MappingSource, 'learnFieldKey'>
  ids: KitIdCache
  now: () => number
}

/** One write of a member's subscriber: the plan's step, the field values to write, where to log. */
export interface SubscriberWrite {
  kit: KitApi
  delivery: QueuedDelivery
  want: SubscriberStep
  fieldWrites: FieldWrite[]
  log: StepLog
  /** The delivery's progress marks (progress.ts): a subscriber Kit creates is marked in it. */
  done: Set<string>
}

const memberKey = (delivery: QueuedDelivery, credentialId: string): SubscriberKey => ({
  communityId: delivery.communityId,
  credentialId,
  memberId: delivery.memberId,
})

export class SubscriberWriter {
  constructor(private readonly deps: SubscriberWriterDeps) {}

  /**
   * Kit's key for each mapped field, learnt from Kit (its field list, or its answer when the field
   * is created on first use). A key Kit gave that differs from the saved mapping's is stored.
   */
  async fieldWrites(kit: KitApi, delivery: QueuedDelivery, fieldValues: Record<string, PlannedField>, log: StepLog): Promise<FieldWrite[]> {
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

  async cached(delivery: QueuedDelivery, credentialId: string): Promise<CachedSubscriber | null> {
    const row = await this.deps.subscribers.get(memberKey(delivery, credentialId))
    if (!row) return null
    return {
      subscriberId: row.subscriberId,
      email: row.email,
      firstName: row.firstName,
      fields: JSON.parse(row.fields) as Record<string, string | null>,
    }
  }

  /** Keeps what the plugin has written to Kit for the member (their kit_subscribers row). */
  remember(delivery: QueuedDelivery, credentialId: string, s: CachedSubscriber): Promise<void> {
    return this.deps.subscribers.save({
      ...memberKey(delivery, credentialId),
      email: s.email,
      subscriberId: s.subscriberId,
      firstName: s.firstName,
      fields: JSON.stringify(s.fields),
      updatedAt: this.deps.now(),
    })
  }

  forget(delivery: QueuedDelivery, credentialId: string): Promise<void> {
    return this.deps.subscribers.forget(memberKey(delivery, credentialId))
  }

  /**
   * The member's Kit subscriber. Known and unchanged: no request. Known with changes (fields,
   * first name, a new email address): one PUT.
   * Unknown: one upsert (plus a PUT when Kit kept an existing subscriber's old field values, or
   * answered 202 and applies them later). When Kit answers with warnings about fields, what it did
   * write is remembered before the error goes up, so a second call writes only what is missing.
   * null: Kit has no subscriber with the address and the plan creates none.
   */
  async write(request: SubscriberWrite): Promise<CachedSubscriber | null> {
    const { kit, delivery, want, fieldWrites, log } = request
    const { email, firstName } = want
    const fields = valuesOf(fieldWrites)
    const known = await this.cached(delivery, kit.credentialId)
    if (known) {
      const delta = subscriberDelta(known, { email, firstName, fields, writeProfile: want.writeProfile })
      const { fields: changedFields, nameChanged, emailChanged } = delta
      const address = emailChanged ? email : known.email
      if (deltaIsEmpty(delta)) {
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
          if (nameChanged || emailChanged || written.length > 0)
            log.add('subscriber.updated', address, emailChanged ? `Email changed from ${known.email}.` : null)
          if (written.length > 0) log.add('fields.written', labelsOf(fieldWrites, written))
          throw err
        }
        const gone = isKitError(err) && err.kind === 'not_found'
        // Only Kit saying the address belongs to someone else means "use that subscriber"; any
        // other refusal of the new address fails with Kit's message.
        const emailTaken =
          emailChanged && isKitError(err) && err.kind === 'validation' && unknownFields(err, fieldWrites) === null && addressTaken(err)
        if (!gone && !emailTaken) throw err
        await this.forget(delivery, kit.credentialId)
        return this.write(request)
      }
      const next = {
        ...known,
        email: address,
        firstName: nameChanged ? firstName : known.firstName,
        fields: { ...known.fields, ...answerFields(answer), ...changedFields },
      }
      await this.remember(delivery, kit.credentialId, next)
      log.add('subscriber.updated', address, emailChanged ? `Email changed from ${known.email}.` : null)
      if (Object.keys(changedFields).length) log.add('fields.written', labelsOf(fieldWrites, Object.keys(changedFields)))
      return { ...next, answer }
    }
    return want.createIfMissing ? this.upsert(request) : this.lookUp(kit, delivery, want, fieldWrites, log)
  }

  /** A plan that creates no one: the subscriber Kit lists under the address, if any. */
  private async lookUp(
    kit: KitApi,
    delivery: QueuedDelivery,
    want: SubscriberStep,
    fieldWrites: FieldWrite[],
    log: StepLog,
  ): Promise<CachedSubscriber | null> {
    const { email } = want
    const fields = valuesOf(fieldWrites)
    const found = await kit.findSubscriberByEmail(email)
    if (!found) return null
    const stored = answerFields(found)
    const changed = Object.fromEntries(Object.entries(fields).filter(([k, v]) => (stored[k] ?? '') !== v))
    let subscriber: CachedSubscriber = { subscriberId: found.id, email, firstName: found.first_name, fields: stored, answer: found }
    if (Object.keys(changed).length === 0) {
      log.add('subscriber.unchanged', email)
    } else {
      // An older event's member fields that no newer event wrote still land (its name and email do not).
      log.attempting = 'member fields not written'
      const answer = await kit.updateSubscriber(found.id, { fields: changed })
      subscriber = { ...subscriber, fields: { ...stored, ...answerFields(answer), ...changed }, answer }
      log.add('subscriber.updated', email)
      log.add(
        'fields.written',
        fieldWrites
          .filter((f) => f.key in changed)
          .map((f) => f.label)
          .join(', '),
      )
    }
    // Remembered, so a delivery put back for the budget (or the member's next event) needs no
    // second lookup; a stale event's address may be one the member left, so it is not kept.
    if (want.writeProfile) await this.remember(delivery, kit.credentialId, subscriber)
    return subscriber
  }

  private async upsert(request: SubscriberWrite): Promise<CachedSubscriber> {
    const { kit, delivery, want, fieldWrites, log, done } = request
    const { email, firstName } = want
    const fields = valuesOf(fieldWrites)
    log.attempting = 'subscriber not written'
    let subscriber: KitSubscriber
    let created: boolean
    let fieldsDeferred: boolean
    try {
      ;({ subscriber, created, fieldsDeferred } = await kit.upsertSubscriber({
        email,
        ...(firstName !== null ? { firstName } : {}),
        ...(want.inactive ? { state: 'inactive' as const } : {}),
        ...(Object.keys(fields).length ? { fields } : {}),
      }))
    } catch (err) {
      if (err instanceof KitFieldWarnings) {
        const s = err.subscriber
        if (err.answerStatus === 201) done.add(createdMark(s.id))
        await this.remember(delivery, kit.credentialId, {
          subscriberId: s.id,
          email,
          firstName: firstName ?? s.first_name,
          fields: answerFields(s),
        })
        log.add(err.answerStatus === 201 ? 'subscriber.created' : 'subscriber.updated', email)
      }
      throw err
    }
    if (created) done.add(createdMark(subscriber.id))
    log.add(created ? 'subscriber.created' : 'subscriber.updated', email)
    // Kit may keep an existing subscriber's old values: those are written with one PUT. A subscriber
    // it created gets the fields sent, even when it writes them after answering (202, more than ten).
    const stale =
      created && fieldsDeferred ? {} : Object.fromEntries(Object.entries(fields).filter(([k, v]) => (subscriber.fields[k] ?? '') !== v))
    if (Object.keys(stale).length > 0) {
      log.attempting = `fields not written (${labelsOf(fieldWrites, Object.keys(stale))})`
      try {
        await kit.updateSubscriber(subscriber.id, { fields: stale })
      } catch (err) {
        await this.remember(delivery, kit.credentialId, {
          subscriberId: subscriber.id,
          email,
          firstName: firstName ?? subscriber.first_name,
          fields: answerFields(subscriber),
        })
        throw err
      }
    }
    const next: CachedSubscriber = {
      subscriberId: subscriber.id,
      email,
      firstName: firstName ?? subscriber.first_name,
      fields: { ...answerFields(subscriber), ...fields },
    }
    await this.remember(delivery, kit.credentialId, next)
    if (Object.keys(fields).length) log.add('fields.written', labelsOf(fieldWrites, Object.keys(fields)))
    return { ...next, answer: subscriber }
  }
}
