/**
 * What a delivery already did in Kit before it gave its slot back, so that resuming it sends only
 * what is left. The subscriber itself needs nothing here (what was written is remembered per
 * member); this covers the membership calls — tag, untag, form, sequence, unsubscribe — which the
 * wrapper answers from memory when this delivery already made them, and whether the delivery
 * created the subscriber (see new-subscriber.ts). In memory only: after a restart they are sent
 * again, which Kit's idempotent membership calls allow.
 */
import type { KitApi } from '../core/kit.ts'

/** Deliveries with progress kept at once; the oldest is dropped beyond it (it then redoes idempotent calls). */
const MAX_TRACKED = 5_000

export class DeliveryProgress {
  private readonly done = new Map<string, Set<string>>()

  /** The calls this delivery already made (a fresh set when none). */
  of(deliveryId: string): Set<string> {
    return this.done.get(deliveryId) ?? new Set()
  }

  /** Keeps the calls made so far for the delivery's next run. */
  keep(deliveryId: string, calls: Set<string>): void {
    this.done.delete(deliveryId)
    if (calls.size === 0) return
    this.done.set(deliveryId, calls)
    if (this.done.size > MAX_TRACKED) {
      const oldest = this.done.keys().next().value
      if (oldest !== undefined) this.done.delete(oldest)
    }
  }

  /** The delivery ended (or will start over): nothing to resume. */
  finish(deliveryId: string): void {
    this.done.delete(deliveryId)
  }

  get size(): number {
    return this.done.size
  }
}

/** `kit`, except that membership calls already in `done` are not sent again; each call made is added. */
export function resumable(kit: KitApi, done: Set<string>): KitApi {
  const once = async (key: string, call: () => Promise<void>): Promise<void> => {
    if (done.has(key)) return
    await call()
    done.add(key)
  }
  return {
    credentialId: kit.credentialId,
    getAccount: () => kit.getAccount(),
    listTags: () => kit.listTags(),
    createTag: (name) => kit.createTag(name),
    listCustomFields: () => kit.listCustomFields(),
    createCustomField: (label) => kit.createCustomField(label),
    listForms: (status) => kit.listForms(status),
    listLegacyForms: () => kit.listLegacyForms(),
    listSequences: () => kit.listSequences(),
    upsertSubscriber: (input) => kit.upsertSubscriber(input),
    getSubscriber: (id) => kit.getSubscriber(id),
    findSubscriberByEmail: (email) => kit.findSubscriberByEmail(email),
    updateSubscriber: (id, input) => kit.updateSubscriber(id, input),
    tagSubscriber: (tagId, subscriberId) => once(`tag:${tagId}:${subscriberId}`, () => kit.tagSubscriber(tagId, subscriberId)),
    untagSubscriber: (tagId, subscriberId) => once(`untag:${tagId}:${subscriberId}`, () => kit.untagSubscriber(tagId, subscriberId)),
    addSubscriberToForm: (formId, subscriberId, referrer) =>
      once(`form:${formId}:${subscriberId}`, () => kit.addSubscriberToForm(formId, subscriberId, referrer)),
    addSubscriberToLegacyForm: (formId, subscriberId) =>
      once(`form:${formId}:${subscriberId}`, () => kit.addSubscriberToLegacyForm(formId, subscriberId)),
    addSubscriberToSequence: (sequenceId, subscriberId) =>
      once(`sequence:${sequenceId}:${subscriberId}`, () => kit.addSubscriberToSequence(sequenceId, subscriberId)),
    unsubscribe: (subscriberId) => once(`unsubscribe:${subscriberId}`, () => kit.unsubscribe(subscriberId)),
  }
}
