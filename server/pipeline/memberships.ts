/**
 * Adding a subscriber to the forms and sequences a mapping names, by subscriber id, the way Kit's
 * own libraries do: a form through `/v4/forms/{id}/subscribers/{subscriber_id}` with a referrer, a
 * legacy form through `/v4/landing_pages/{id}/subscribers/{subscriber_id}`, a sequence through
 * `/v4/sequences/{id}/subscribers/{subscriber_id}`.
 *
 * Nothing is read ahead: only when Kit refuses one of these calls is the list it concerns read
 * (once) to learn why — an archived or deleted form, a legacy form, a sequence on hold or gone, or
 * else a subscriber Kit no longer has. Which forms are legacy is then remembered per credential,
 * so the next delivery joins them directly. A refusal makes nothing else be forgotten.
 */
import type { KitApi } from '../core/kit.ts'
import { isKitError, type KitError } from '../kit/errors.ts'

/** Kit refuses to add anyone to this form: it is archived, or no longer exists. */
export class FormUnavailable extends Error {
  constructor(
    readonly formId: number,
    readonly state: 'archived' | 'missing',
  ) {
    super(`Form ${formId} is ${state} in Kit`)
  }
}

/** Kit refuses to add anyone to this sequence: it is inactive (on hold), or no longer exists. */
export class SequenceUnavailable extends Error {
  constructor(
    readonly sequenceId: number,
    readonly state: 'inactive' | 'missing',
    /** What Kit answered, for the owner. */
    readonly kitMessage: string,
  ) {
    super(`Sequence ${sequenceId} is ${state} in Kit`)
  }
}

/** The form or sequence is there: it is the subscriber that Kit no longer knows. */
export class SubscriberUnknown extends Error {
  constructor() {
    super('Kit no longer knows the subscriber')
  }
}

type FormState = 'active' | 'legacy' | 'archived' | 'missing'

/** What a refused form or sequence means for the owner, and what to do. */
export const MEMBERSHIP_WORDS = {
  formRefused: (name: string, err: FormUnavailable, type: string, unconfirmedEmail: string | null) =>
    `not added to form "${name}": ${err.state === 'archived' ? 'it is archived in Kit' : 'it no longer exists in Kit'}.` +
    (unconfirmedEmail ? ` ${MEMBERSHIP_WORDS.unconfirmed(unconfirmedEmail)}` : '') +
    ` Restore the form in Kit or pick another form for ${type}, then Retry.`,
  unconfirmed: (email: string) =>
    `${email} is unconfirmed in Kit: created inactive for this form to confirm, they get no email until a form that works takes them.`,
  sequenceRefused: (name: string, err: SequenceUnavailable, type: string) =>
    err.state === 'inactive'
      ? `not added to sequence "${name}": the sequence is inactive in Kit (Kit said "${err.kitMessage}"). Turn it on in Kit or take it out of the ${type} mapping, then Retry.`
      : `not added to sequence "${name}": it no longer exists in Kit. Pick another sequence for ${type}, then Retry.`,
}

const notFound = (err: unknown): err is KitError => isKitError(err) && err.kind === 'not_found'

export class FormDirectory {
  /** Legacy form ids, by credential, as Kit listed them when last read. */
  private readonly legacy = new Map<string, ReadonlySet<number>>()

  /** Adds the subscriber to the form; throws FormUnavailable or SubscriberUnknown when Kit cannot. */
  async join(kit: KitApi, formId: number, subscriberId: number, referrer: string | null): Promise<void> {
    const add = (legacy: boolean) =>
      legacy ? kit.addSubscriberToLegacyForm(formId, subscriberId) : kit.addSubscriberToForm(formId, subscriberId, referrer)
    const assumedLegacy = this.legacy.get(kit.credentialId)?.has(formId) === true
    try {
      await add(assumedLegacy)
      return
    } catch (err) {
      if (!notFound(err)) throw err
    }
    const state = await this.locate(kit, formId)
    if (state === 'archived' || state === 'missing') throw new FormUnavailable(formId, state)
    // The form is where the call went: the subscriber is what Kit did not find.
    if ((state === 'legacy') === assumedLegacy) throw new SubscriberUnknown()
    try {
      await add(state === 'legacy')
    } catch (err) {
      if (notFound(err)) throw new SubscriberUnknown()
      throw err
    }
  }

  /** Reads Kit's forms (active and archived) and legacy forms afresh, and says where the form is. */
  private async locate(kit: KitApi, formId: number): Promise<FormState> {
    const [forms, legacy] = await Promise.all([kit.listForms('all'), kit.listLegacyForms()])
    this.legacy.set(kit.credentialId, new Set(legacy.map((f) => f.id)))
    if (legacy.some((f) => f.id === formId)) return 'legacy'
    const form = forms.find((f) => f.id === formId)
    if (!form) return 'missing'
    return form.archived ? 'archived' : 'active'
  }
}

/**
 * Adds the subscriber to the sequence; when Kit refuses (404 or 422), its sequence list is read
 * once to tell a sequence on hold or gone (SequenceUnavailable) from a subscriber it no longer has
 * (SubscriberUnknown). Any other refusal goes up as Kit gave it.
 */
export async function joinSequence(kit: KitApi, sequenceId: number, subscriberId: number): Promise<void> {
  try {
    await kit.addSubscriberToSequence(sequenceId, subscriberId)
    return
  } catch (err) {
    if (!isKitError(err) || (err.kind !== 'not_found' && err.kind !== 'validation')) throw err
    const sequence = (await kit.listSequences()).find((s) => s.id === sequenceId)
    if (!sequence) throw new SequenceUnavailable(sequenceId, 'missing', err.message)
    if (sequence.hold) throw new SequenceUnavailable(sequenceId, 'inactive', err.message)
    if (err.kind === 'not_found') throw new SubscriberUnknown()
    throw err
  }
}

/**
 * The `referrer` Kit records for a form subscription: the event's source when it is a web address
 * (the community on App Station), else none.
 */
export function referrerOf(source: string): string | null {
  if (!URL.canParse(source)) return null
  const url = new URL(source)
  return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null
}
