/**
 * Executes the plan for one member event (see core/planner.ts): the subscriber first (created or
 * updated only when something changed), then tags, forms, sequences and unsubscribe, in the
 * plan's order. Kit's errors become the outcome (see outcomes.ts); the consumer records it.
 */
import type { FastifyBaseLogger } from 'fastify'
import { DEFAULT_CONSENT_MODE, type KitRef } from '#shared/api.ts'
import type { KitApi } from '../core/kit.ts'
import type { KitClientFactory } from '../kit/client.ts'
import { isKitError, type KitError } from '../kit/errors.ts'
import type { MemberEvent } from '../core/envelope.ts'
import { createdMark } from '../core/new-subscriber.ts'
import {
  credentialVerdict,
  gateByKitState,
  needsKitState,
  planDelivery,
  removalsFor,
  scopesToRead,
  type KnownKitState,
  type Plan,
  type SendPlan,
  type TagTarget,
} from '../core/planner.ts'
import type { ConsentSource, CredentialSource, ErasureList, KitStateMemory, MappingSource, OwnKitWrites } from '../core/ports.ts'
import type { DeliveryQueue, Outcome, QueuedDelivery } from '../core/queue.ts'
import { nextListLookup, type RetryPolicy } from '../core/retry-policy.ts'
import type { HeldTagRepository, SubscriberRepository } from '../core/storage.ts'
import { reasonWords, type KitStateWarning, type ReasonDetails } from '../core/reasons.ts'
import { takingTurns, type Turn } from './fairness.ts'
import type { KitIdCache } from './kit-ids.ts'
import { describeTag, MappedTags } from './mapped-tags.ts'
import {
  FormDirectory,
  FormUnavailable,
  joinSequence,
  MEMBERSHIP_WORDS,
  referrerOf,
  SequenceUnavailable,
  SubscriberUnknown,
} from './memberships.ts'
import { Outcomes, Refused, unsent } from './outcomes.ts'
import { DeliveryProgress, resumable } from './progress.ts'
import { capitalise, describeFields, durationWords, namesTag, StepLog, unknownFields } from './step-log.ts'
import { SubscriberWriter, type CachedSubscriber } from './subscriber-writer.ts'

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
  /** Told before the plugin unsubscribes someone, so the Kit watch does not report it back. */
  ownWrites?: OwnKitWrites
  /** Kit's state for each member as last seen; a delivery hands over what Kit answered (absent: states are not kept). */
  kitStates?: KitStateMemory
  /** The community's consent setting (absent: every member may become a subscriber). */
  consent?: ConsentSource
  /** Told of every member an erasing `user.deleted` erased, to be deleted by hand in Kit (absent: not listed). */
  erasures?: ErasureList
  now?: () => number
  random?: () => number
}

/** What executing a plan came to, short of an error. */
interface Executed {
  warnings: string[]
  /** The Kit subscriber the steps were applied to. */
  subscriberId?: number
  /** Kit's state for the person left forms or sequences out (or let a form re-subscribe them). */
  warning?: KitStateWarning
  /**
   * Kit lists nobody with the address: its list may not show the subscriber yet (`list_lag`, look
   * again at `lookAgainAt`), or the window for that has passed (`not_in_kit`).
   */
  notFound?: { reason: 'list_lag'; lookAgainAt: number; details: ReasonDetails } | { reason: 'not_in_kit'; details: ReasonDetails }
}

export class DeliveryProcessor {
  private readonly now: () => number
  private readonly random: () => number
  /** Membership calls made by deliveries that gave their slot back for Kit's budget. */
  private readonly progress = new DeliveryProgress()
  /** Which forms are legacy, per credential, learnt when Kit refused a form call. */
  private readonly forms = new FormDirectory()
  private readonly tags: MappedTags
  private readonly subscribers: SubscriberWriter
  private readonly outcomes: Outcomes

  constructor(private readonly deps: ProcessorDeps) {
    this.now = deps.now ?? Date.now
    this.random = deps.random ?? Math.random
    this.tags = new MappedTags({ ids: deps.ids, mappings: deps.mappings, held: deps.heldTags, now: this.now })
    this.subscribers = new SubscriberWriter({ subscribers: deps.subscribers, mappings: deps.mappings, ids: deps.ids, now: this.now })
    this.outcomes = new Outcomes({
      retry: deps.retry,
      log: deps.log,
      now: this.now,
      random: this.random,
      connections: deps.connections,
      subscribers: this.subscribers,
    })
  }

  /** `turn`: the delivery's turn in a consumer slot; once over, it is put back before its next Kit call. */
  async process(delivery: QueuedDelivery, signal?: AbortSignal, turn?: Turn): Promise<Outcome> {
    const event = JSON.parse(delivery.payload) as MemberEvent
    const communityId = delivery.communityId

    const credential = await this.deps.connections.credential(communityId)
    if (!credential || credential.status !== 'connected') {
      return unsent(credentialVerdict(credential?.status ?? 'none') ?? { kind: 'skip', reason: 'not_connected', details: {} })
    }
    const marks = await this.deps.queue.marks(communityId, scopesToRead(event, delivery.memberId))
    const mappings = await this.deps.mappings.get(communityId)
    const consentMode = (await this.deps.consent?.consentMode(communityId)) ?? DEFAULT_CONSENT_MODE
    // Only the consent-only mode needs to know whether the member is in Kit before planning.
    const knownInKit = consentMode === 'marketing_consent' && (await this.subscribers.cached(delivery, credential.credentialId)) !== null
    const planned: Plan = planDelivery(delivery, event, { mappings, marks, consentMode, knownInKit })
    if (planned.kind !== 'send') return unsent(planned)

    // Only requests Kit answered count: a network failure (refused, reset, timed out) never
    // reached Kit's API, and waits for the budget are not requests at all.
    let kitRequests = 0
    // A delivery never waits for the budget while it holds a consumer slot: it gives the slot
    // back (see Outcomes.of) and resumes later without repeating the calls it already made.
    const done = this.progress.of(delivery.id)
    this.progress.finish(delivery.id)
    const kit = resumable(
      this.deps.kit.forKey(credential.auth, {
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

    const log = new StepLog()
    try {
      const notes = await this.execute(takingTurns(kit, turn), delivery, event, planned, log, done)
      const notFound = notes.notFound
      if (notFound?.reason === 'list_lag') {
        // Nothing was changed and no ordering mark is set: the next attempt decides.
        const words = reasonWords(notFound.reason, notFound.details)
        log.add('warning', null, words)
        return {
          status: 'retrying',
          reason: notFound.reason,
          kitRequests,
          lastError: words,
          nextAttemptAt: notFound.lookAgainAt,
          steps: log.steps,
        }
      }
      if (notFound) {
        // Nobody in Kit to change: the subscription or access scope is settled by this event, and
        // an older snapshot has nothing to add; but no profile was written, so the member's older
        // live events arriving later (a sign-up) still write theirs.
        const words = reasonWords(notFound.reason, notFound.details)
        log.add('skipped', null, words)
        return { status: 'skipped', reason: notFound.reason, kitRequests, lastError: words, steps: log.steps, marks: planned.settledMarks }
      }
      if (planned.staleProfile) {
        const note = planned.newerFields
          ? "A newer event already set this member's profile, so this one wrote no name or email, and none of the member fields the newer one had written."
          : "A newer event already set this member's profile, so this one wrote no name or email."
        notes.warnings.push(note)
        log.add('warning', null, note)
      }
      if (planned.erase && notes.subscriberId !== undefined) {
        await this.deps.erasures?.erased({ communityId, memberId: delivery.memberId, subscriberId: notes.subscriberId })
      }
      return {
        status: 'succeeded',
        ...(notes.warning ? { reason: notes.warning } : {}),
        kitRequests,
        lastError: notes.warnings.length ? notes.warnings.join(' ') : null,
        steps: log.steps,
        marks: planned.marks,
      }
    } catch (err) {
      const outcome = await this.outcomes.of(err, delivery, credential.credentialId, kitRequests, log, signal?.aborted === true)
      log.add(outcome.status === 'failed' ? 'failed' : 'warning', err instanceof Refused ? err.target : null, outcome.lastError)
      if (outcome.status !== 'pending') return { ...outcome, steps: log.steps }
      // Put back for the budget: the tag, form, sequence and unsubscribe calls it made are not
      // sent again when it resumes (and a subscriber it created is still known as new), so once
      // it has changed something its ordering marks are set now — an older event of the member
      // claimed meanwhile must not undo what it did.
      this.progress.keep(delivery.id, done)
      return { ...outcome, steps: log.steps, ...(done.size > 0 ? { marks: planned.marks } : {}) }
    }
  }

  private async execute(
    kit: KitApi,
    delivery: QueuedDelivery,
    event: MemberEvent,
    planned: SendPlan,
    log: StepLog,
    done: Set<string>,
  ): Promise<Executed> {
    const warnings: string[] = []
    const subscriber = await this.writeSubscriber(kit, delivery, planned, log, done)
    if (!subscriber) {
      // Kit's lookup by email lags its writes: someone created in Kit moments ago (by hand, by a
      // form, through another key) is not listed yet. Look again for a while before concluding.
      const details = { email: planned.subscriber.email, window: durationWords(this.deps.retry.listLagWindowMs) }
      const lookAgainAt = nextListLookup(this.deps.retry, delivery.receivedAt, this.now(), delivery.attempts, this.random())
      return { warnings, notFound: lookAgainAt === null ? { reason: 'not_in_kit', details } : { reason: 'list_lag', lookAgainAt, details } }
    }
    const subscriberId = subscriber.subscriberId
    const unfilled = (mode: 'add' | 'remove') => {
      for (const { name } of planned.unfilledTags.filter((t) => t.mode === mode)) {
        warnings.push(`Tag "${name}" was left out: the event has no value for its placeholder.`)
        log.add('skipped', name, 'The event has no value for its placeholder.')
      }
    }
    // Kit's state for the person decides whether forms and sequences may run (and never changes
    // for someone unsubscribed, bounced or complained); a subscriber Kit created here has no tags to remove.
    const gated = gateByKitState(
      removalsFor(planned.steps, done.has(createdMark(subscriberId))),
      await this.kitState(kit, delivery, subscriber, planned, log),
      planned.consent,
    )
    if (gated.warning) {
      const words = reasonWords(gated.warning)
      warnings.push(words)
      log.add('warning', null, words)
    }
    unfilled('remove')
    let addsNoted = false
    const referrer = referrerOf(event.source)
    for (const s of gated.steps) {
      if (s.kind !== 'tag.remove' && !addsNoted) {
        unfilled('add')
        addsNoted = true
      }
      switch (s.kind) {
        case 'tag.remove':
          await this.removeTag(kit, delivery, s.tag, subscriberId, planned, warnings, log)
          break
        case 'tag.add':
          await this.addTag(kit, delivery, s.tag, subscriberId, planned, log)
          break
        case 'form.add':
          log.attempting = `not added to form "${s.form.name}"`
          try {
            await this.forms.join(kit, s.form.id, subscriberId, referrer)
          } catch (err) {
            if (err instanceof SubscriberUnknown) return this.outcomes.subscriberGone(kit, delivery)
            if (err instanceof FormUnavailable) throw await this.formRefused(kit, subscriber, s.form, err, planned, log)
            throw err
          }
          log.add('form.added', s.form.name)
          break
        case 'sequence.add':
          log.attempting = `not added to sequence "${s.sequence.name}"`
          try {
            await joinSequence(kit, s.sequence.id, subscriberId)
          } catch (err) {
            if (err instanceof SubscriberUnknown) return this.outcomes.subscriberGone(kit, delivery)
            if (err instanceof SequenceUnavailable)
              throw new Refused(MEMBERSHIP_WORDS.sequenceRefused(s.sequence.name, err, planned.type), s.sequence.name)
            throw err
          }
          log.add('sequence.added', s.sequence.name)
          break
        case 'unsubscribe':
          log.attempting = 'not unsubscribed'
          await this.deps.ownWrites?.unsubscribing({
            communityId: delivery.communityId,
            credentialId: kit.credentialId,
            memberId: delivery.memberId,
            subscriberId,
            email: subscriber.email,
            firstName: subscriber.firstName,
          })
          await kit.unsubscribe(subscriberId)
          log.add('unsubscribed')
          break
      }
    }
    if (!addsNoted) unfilled('add')
    return { warnings, subscriberId, ...(gated.warning ? { warning: gated.warning } : {}) }
  }

  /**
   * Kit's state for the member: from Kit's answer in this delivery when it gave one (handed to
   * the memory, which reports news to the platform once); otherwise read from Kit when the plan
   * holds a form or sequence (one request, so nobody unsubscribed is ever added to one); otherwise
   * as last seen.
   */
  private async kitState(
    kit: KitApi,
    delivery: QueuedDelivery,
    subscriber: CachedSubscriber,
    planned: SendPlan,
    log: StepLog,
  ): Promise<KnownKitState | null> {
    const memory = this.deps.kitStates
    const key = { communityId: delivery.communityId, credentialId: kit.credentialId, memberId: delivery.memberId }
    let answer = subscriber.answer
    if (!answer && needsKitState(planned.steps)) {
      log.attempting = "subscriber's state in Kit not read"
      answer = (await kit.getSubscriber(subscriber.subscriberId)) ?? undefined
      if (!answer) return this.outcomes.subscriberGone(kit, delivery)
      subscriber.answer = answer
    }
    if (!memory) return answer ? { state: answer.state, learnedAt: this.now() } : null
    return answer ? memory.learned(key, answer) : memory.stateOf(key)
  }

  /**
   * The plan's subscriber step. When Kit did not know a field key (renamed or deleted in Kit
   * since it was learnt), Kit's field list is read afresh, once, and the step runs again.
   */
  private async writeSubscriber(
    kit: KitApi,
    delivery: QueuedDelivery,
    planned: SendPlan,
    log: StepLog,
    done: Set<string>,
  ): Promise<CachedSubscriber | null> {
    let fields = await this.subscribers.fieldWrites(kit, delivery, planned.subscriber.fields, log)
    try {
      return await this.subscribers.write({ kit, delivery, want: planned.subscriber, fieldWrites: fields, log, done })
    } catch (err) {
      if (unknownFields(err, fields) === null) throw err
      this.deps.ids.forgetFields(kit.credentialId)
      fields = await this.subscribers.fieldWrites(kit, delivery, planned.subscriber.fields, log)
      try {
        return await this.subscribers.write({ kit, delivery, want: planned.subscriber, fieldWrites: fields, log, done })
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
  }

  // A tag is applied by its id, whatever it is called in Kit now: picked in the panel, or held
  // since a typed-in or templated name was first created or found in Kit (see MappedTags).
  private async removeTag(
    kit: KitApi,
    delivery: QueuedDelivery,
    tag: TagTarget,
    subscriberId: number,
    planned: SendPlan,
    warnings: string[],
    log: StepLog,
  ): Promise<void> {
    log.attempting = `tag "${tag.name}" not removed`
    const tagId = await this.tags.idFor(kit, delivery.communityId, tag, 'remove')
    const removed =
      tagId !== null && (await this.tagCall(kit, delivery, tag, tagId, 'remove', (id) => kit.untagSubscriber(id, subscriberId)))
    if (removed) {
      log.add('tag.removed', tag.name)
    } else if (tag.storedId !== null) {
      const note = capitalise(
        `${describeTag(tag)} no longer exists in Kit, so there was nothing to remove: pick it again in the ${planned.type} mapping.`,
      )
      warnings.push(note)
      log.add('warning', tag.name, note)
    } else {
      log.attempting = null
    }
  }

  private async addTag(
    kit: KitApi,
    delivery: QueuedDelivery,
    tag: TagTarget,
    subscriberId: number,
    planned: SendPlan,
    log: StepLog,
  ): Promise<void> {
    log.attempting = `tag "${tag.name}" not added`
    const tagId = await this.tags.idFor(kit, delivery.communityId, tag, 'add')
    if (tagId === null || !(await this.tagCall(kit, delivery, tag, tagId, 'add', (id) => kit.tagSubscriber(id, subscriberId)))) {
      throw new Refused(`${describeTag(tag)} no longer exists in Kit: pick it again in the ${planned.type} mapping, then Retry.`)
    }
    log.add('tag.added', tag.name)
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
      return this.outcomes.subscriberGone(kit, delivery)
    }
    try {
      await call(fresh)
      return true
    } catch (again) {
      if (isKitError(again) && again.kind === 'not_found') return this.outcomes.subscriberGone(kit, delivery)
      throw again
    }
  }

  /**
   * Kit refuses to add anyone to a mapped form (archived or deleted): the delivery fails naming the
   * form, and says so when the person is left unconfirmed in Kit — created `inactive` for the form
   * to confirm, they get no email until a form that works takes them.
   */
  private async formRefused(
    kit: KitApi,
    subscriber: CachedSubscriber,
    form: KitRef,
    err: FormUnavailable,
    planned: SendPlan,
    log: StepLog,
  ): Promise<Refused> {
    const unconfirmed = (subscriber.answer ?? (await kit.getSubscriber(subscriber.subscriberId)))?.state === 'inactive'
    if (unconfirmed) log.add('subscriber.unconfirmed', subscriber.email, MEMBERSHIP_WORDS.unconfirmed(subscriber.email))
    return new Refused(MEMBERSHIP_WORDS.formRefused(form.name, err, planned.type, unconfirmed ? subscriber.email : null), form.name)
  }
}
