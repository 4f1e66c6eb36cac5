/**
 * Bulk batches: with an OAuth connection, an initial sync's members, and what was recorded while
 * no Kit account was connected when the owner sends it, go to Kit up to a hundred at a time
 * through Kit's bulk endpoints — one request creates (or finds) them all, then one per
 * hundred field values, tag additions, tag removals and form additions — instead of a few
 * requests each. Each member is planned by the same planner as a single delivery, so the filter,
 * consent, Kit's state and the ordering guard decide exactly as they do there; each delivery is
 * settled on its own with its own steps.
 *
 * What a batch cannot do is left to the per-member path (the processor), in the same slot: a plan
 * with a sequence or an unsubscribe, a new email address, a stale profile, a tag left unfilled;
 * every member whose item Kit refused (its words kept in Activity); and the whole rest of the
 * batch when a bulk request fails for any other reason (the processor knows how to wait, retry
 * and give up). Kit's 413 (too much bulk work queued for the account) puts the batch back for a
 * minute; its 403 (the plan's subscriber limit) fails the batch with words saying what to do.
 */
import type { FastifyBaseLogger } from 'fastify'
import { DEFAULT_CONSENT_MODE, type Mappings } from '#shared/api.ts'
import { BULK_BATCH, type BulkFailure, type KitBulkApi, type KitSubscriber } from '../core/kit.ts'
import type { MemberEvent } from '../core/envelope.ts'
import {
  fitsBulk,
  gateByKitState,
  planDelivery,
  removalsFor,
  scopesToRead,
  subscriberDelta,
  type KitStep,
  type SendPlan,
} from '../core/planner.ts'
import type { ConsentSource, CredentialSource, KitStateMemory, MappingSource, MemberKey } from '../core/ports.ts'
import type { DeliveryQueue, Outcome, QueuedDelivery } from '../core/queue.ts'
import { reasonWords, type KitStateWarning } from '../core/reasons.ts'
import { SNAPSHOT_TYPE } from '../core/snapshot.ts'
import type { HeldTagRepository, SubscriberRepository } from '../core/storage.ts'
import { isOAuthCredentialId, type KitClientFactory } from '../kit/client.ts'
import { isKitError } from '../kit/errors.ts'
import type { KitIdCache } from './kit-ids.ts'
import { MappedTags } from './mapped-tags.ts'
import { referrerOf } from './memberships.ts'
import { unsent } from './outcomes.ts'
import { labelsOf, step, StepLog, valuesOf, type FieldWrite } from './step-log.ts'
import { SubscriberWriter, type CachedSubscriber } from './subscriber-writer.ts'

/** How long a batch waits after Kit said too much bulk work is queued for the account. */
export const BULK_BUSY_WAIT_MS = 60_000

export interface BulkDeps {
  queue: Pick<DeliveryQueue, 'claimBulk' | 'marks'>
  subscribers: SubscriberRepository
  connections: CredentialSource
  mappings: MappingSource
  consent?: ConsentSource
  kit: KitClientFactory
  ids: KitIdCache
  heldTags: HeldTagRepository
  kitStates?: KitStateMemory
  log: FastifyBaseLogger
  now?: () => number
}

export interface BatchContext {
  /** The community's credential id as the consumer knows it (absent: not connected). */
  credentialId: string | undefined
  /** The consumer's lease owner: the batch's other deliveries are leased to it too. */
  owner: string
  leaseMs: number
  signal?: AbortSignal
}

/** What became of a batch: outcomes to record, and deliveries for the per-member path. */
export interface BatchResult {
  settled: { delivery: QueuedDelivery; outcome: Outcome }[]
  /** Each with the words to keep in its Activity when Kit refused it in the batch (null: never tried). */
  single: { delivery: QueuedDelivery; note: string | null }[]
}

/** One member of a batch on its way through the bulk requests. */
interface Member {
  delivery: QueuedDelivery
  event: MemberEvent
  planned: SendPlan
  known: CachedSubscriber | null
  /** The first name goes to Kit: someone the plugin has not written yet, or a name changed since. */
  nameSent: boolean
  fields: (FieldWrite & { id: number })[]
  /** Keys of the mapped values Kit may not hold yet: all for someone the plugin has not written, else what changed. */
  changed: string[]
  subscriber?: KitSubscriber
  steps: KitStep[]
  warning?: KitStateWarning
  /** Kit refused one of its items: it goes the per-member way, with these words. */
  refused?: string
  log: StepLog
}

/** The email addresses Kit answers with are lower-cased and trimmed, as the plan's are. */
const addressOf = (email: string) => email.trim().toLowerCase()

export class BulkSender {
  private readonly now: () => number
  private readonly tags: MappedTags
  private readonly writer: SubscriberWriter

  constructor(private readonly deps: BulkDeps) {
    this.now = deps.now ?? Date.now
    this.tags = new MappedTags({ ids: deps.ids, mappings: deps.mappings, held: deps.heldTags, now: this.now })
    this.writer = new SubscriberWriter({ subscribers: deps.subscribers, mappings: deps.mappings, ids: deps.ids, now: this.now })
  }

  /**
   * Sends `first` (an initial sync's member, or replayed work) with up to BULK_BATCH − 1 more of its
   * community's such deliveries, when the community is connected by OAuth; null when it is not, or
   * `first` is a live event (the per-member path then takes it).
   */
  async send(first: QueuedDelivery, ctx: BatchContext): Promise<BatchResult | null> {
    // Decided before any read: only OAuth connections have bulk endpoints.
    if (first.eventType !== SNAPSHOT_TYPE && first.replay !== 1) return null
    if (ctx.credentialId === undefined || !isOAuthCredentialId(ctx.credentialId)) return null
    const credential = await this.deps.connections.credential(first.communityId)
    if (!credential || credential.status !== 'connected' || credential.kind !== 'oauth') return null
    const more = await this.deps.queue.claimBulk({
      owner: ctx.owner,
      communityId: first.communityId,
      limit: BULK_BATCH - 1,
      leaseMs: ctx.leaseMs,
      now: this.now(),
    })
    const result: BatchResult = { settled: [], single: [] }
    const mappings = await this.deps.mappings.get(first.communityId)
    const consentMode = (await this.deps.consent?.consentMode(first.communityId)) ?? DEFAULT_CONSENT_MODE
    const members: Member[] = []
    for (const delivery of [first, ...more.filter((d) => d.seq !== first.seq)]) {
      const member = await this.planned(delivery, credential.credentialId, mappings, consentMode)
      if ('outcome' in member) result.settled.push({ delivery, outcome: member.outcome })
      else if (member.bulk) members.push(member.bulk)
      else result.single.push({ delivery, note: null })
    }
    if (members.length === 0) return result

    let requests = 0
    const kit = this.deps.kit.forBulk(credential.auth, {
      credentialId: credential.credentialId,
      priority: 'background',
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onRequest: (info) => {
        if (info.status !== 'network_error') requests += 1
      },
    })
    try {
      await this.fieldIds(kit, members)
      await this.create(kit, members)
      await this.writeFields(kit, members)
      await this.applyTags(kit, members)
      // What was written is remembered before Kit's answer is compared with it (see gate), so a
      // name just sent is never taken for a change made in Kit; Kit's state then decides the forms.
      for (const m of live(members)) await this.remember(kit, m)
      await this.gate(kit, members)
      await this.addToForms(kit, members)
    } catch (err) {
      const stopped = this.stopped(err)
      if (!stopped) {
        // Anything else Kit or the network did: the per-member path retries, waits or gives up.
        this.deps.log.warn({ err, communityId: first.communityId }, 'a bulk batch failed; its members go one by one')
        for (const m of members) result.single.push({ delivery: m.delivery, note: m.refused ?? null })
        return result
      }
      const shares = share(requests, members.length)
      for (const [i, m] of members.entries())
        result.settled.push({ delivery: m.delivery, outcome: { ...stopped, kitRequests: shares[i] ?? 0 } })
      return result
    }
    const done = members.filter((m) => m.refused === undefined)
    for (const m of members) if (m.refused !== undefined) result.single.push({ delivery: m.delivery, note: m.refused })
    const shares = share(requests, done.length)
    for (const [i, m] of done.entries()) result.settled.push({ delivery: m.delivery, outcome: this.succeeded(m, shares[i] ?? 0) })
    return result
  }

  /** The member's plan, as a single delivery would make it; whether a batch can carry it. */
  private async planned(
    delivery: QueuedDelivery,
    credentialId: string,
    mappings: Mappings,
    consentMode: Awaited<ReturnType<ConsentSource['consentMode']>>,
  ): Promise<{ outcome: Outcome } | { bulk: Member | null }> {
    const event = JSON.parse(delivery.payload) as MemberEvent
    const marks = await this.deps.queue.marks(delivery.communityId, scopesToRead(event, delivery.memberId))
    const known = await this.writer.cached(delivery, credentialId)
    const planned = planDelivery(delivery, event, { mappings, marks, consentMode, knownInKit: known !== null })
    if (planned.kind !== 'send') return { outcome: unsent(planned) }
    if (!fitsBulk(planned, known?.email ?? null)) return { bulk: null }
    const { firstName } = planned.subscriber
    return {
      bulk: {
        delivery,
        event,
        planned,
        known,
        nameSent: firstName !== null && (known === null || firstName !== known.firstName),
        fields: [],
        changed: [],
        // A bulk answer does not tell whether Kit created the person just now: removals are sent
        // for everyone (taking a tag off someone who has none changes nothing).
        steps: removalsFor(planned.steps, false),
        log: new StepLog(),
      },
    }
  }

  /** Kit's key and numeric id of every mapped field (created in Kit on first use, as single deliveries do). */
  private async fieldIds(kit: KitBulkApi, members: Member[]): Promise<void> {
    for (const m of members) {
      const writes = await this.writer.fieldWrites(kit, m.delivery, m.planned.subscriber.fields, m.log)
      for (const w of writes) {
        const id = await this.deps.ids.fieldId(kit, w.key)
        if (id === null) {
          m.refused = `Field "${w.label}" (key ${w.key}) has no id in Kit's field list.`
          break
        }
        m.fields.push({ ...w, id })
      }
      const wanted = valuesOf(m.fields)
      m.changed = Object.keys(
        m.known === null
          ? wanted
          : subscriberDelta(m.known, { email: m.planned.subscriber.email, firstName: null, fields: wanted, writeProfile: false }).fields,
      )
    }
  }

  /**
   * One request finds or creates every member (Kit answers each with its id and state): a name is
   * sent for someone the plugin has not written yet, or whose name changed since it last did.
   */
  private async create(kit: KitBulkApi, members: Member[]): Promise<void> {
    const batch = live(members)
    if (batch.length === 0) return
    const items = batch.map(({ planned: { subscriber }, nameSent }) => ({
      email: subscriber.email,
      ...(nameSent ? { firstName: subscriber.firstName } : {}),
      ...(subscriber.inactive ? { state: 'inactive' as const } : {}),
    }))
    const answer = await kit.bulkCreateSubscribers(items)
    refuseItems(
      batch.map((member, i) => ({ member, item: items[i]! })),
      answer.failures.filter((f) => f.item !== null),
    )
    // Whoever Kit's answer leaves out was refused too, in words not naming them (an address Kit
    // could not read comes back blank).
    const unnamed = answer.failures.filter((f) => f.item === null).flatMap((f) => f.errors)
    const byEmail = new Map(answer.subscribers.map((s) => [addressOf(s.email_address), s]))
    for (const m of live(batch)) {
      const subscriber = byEmail.get(addressOf(m.planned.subscriber.email))
      if (subscriber) m.subscriber = subscriber
      else
        m.refused =
          unnamed.length > 0 ? refusal(unnamed) : 'Kit did not answer for this member in a bulk request, so it was sent on its own.'
    }
  }

  /** Kit's state for each member decides whether forms may run, as in single deliveries (tags were written already). */
  private async gate(kit: KitBulkApi, members: Member[]): Promise<void> {
    for (const m of live(members)) {
      const subscriber = m.subscriber as KitSubscriber
      const key: MemberKey = { communityId: m.delivery.communityId, credentialId: kit.credentialId, memberId: m.delivery.memberId }
      const state = this.deps.kitStates
        ? await this.deps.kitStates.learned(key, subscriber)
        : { state: subscriber.state, learnedAt: this.now() }
      // Tags are written whatever the state; forms only as Kit's state allows.
      const gated = gateByKitState(m.steps, state, m.planned.consent)
      m.steps = gated.steps
      if (gated.warning) m.warning = gated.warning
    }
  }

  /** Every mapped value Kit may not hold yet (see Member.changed). */
  private async writeFields(kit: KitBulkApi, members: Member[]): Promise<void> {
    const items = live(members).flatMap((m) =>
      m.fields
        .filter((f) => m.changed.includes(f.key))
        .map((f) => ({ member: m, item: { subscriberId: (m.subscriber as KitSubscriber).id, fieldId: f.id, value: f.value } })),
    )
    for (const chunk of chunks(items)) {
      refuseItems(chunk, await kit.bulkSetFields(chunk.map((c) => c.item)))
    }
  }

  private async applyTags(kit: KitBulkApi, members: Member[]): Promise<void> {
    for (const mode of ['remove', 'add'] as const) {
      const items: { member: Member; item: { tagId: number; subscriberId: number } }[] = []
      for (const m of live(members)) {
        for (const s of m.steps) {
          if (s.kind !== (mode === 'add' ? 'tag.add' : 'tag.remove')) continue
          const tagId = await this.tags.idFor(kit, m.delivery.communityId, s.tag, mode)
          if (tagId === null) {
            // Kit has no such tag: removing it has nothing to do; adding it fails the per-member way, with its words.
            if (mode === 'add') m.refused = `Tag "${s.tag.name}" could not be found or created in Kit.`
            continue
          }
          items.push({ member: m, item: { tagId, subscriberId: (m.subscriber as KitSubscriber).id } })
        }
      }
      for (const chunk of chunks(items.filter((i) => i.member.refused === undefined))) {
        const list = chunk.map((c) => c.item)
        refuseItems(chunk, await (mode === 'add' ? kit.bulkTag(list) : kit.bulkUntag(list)))
      }
    }
  }

  private async addToForms(kit: KitBulkApi, members: Member[]): Promise<void> {
    const items = live(members).flatMap((m) =>
      m.steps.flatMap((s) =>
        s.kind === 'form.add'
          ? [
              {
                member: m,
                item: { formId: s.form.id, subscriberId: (m.subscriber as KitSubscriber).id, referrer: referrerOf(m.event.source) },
              },
            ]
          : [],
      ),
    )
    for (const chunk of chunks(items)) refuseItems(chunk, await kit.bulkAddToForms(chunk.map((c) => c.item)))
  }

  /** Kit's 413 and 403: the batch waits, or fails with what to do; null for any other error. */
  private stopped(err: unknown): Outcome | null {
    if (!isKitError(err)) return null
    if (err.status === 413) {
      const words = reasonWords('kit_bulk_busy')
      return {
        status: 'retrying',
        reason: 'kit_bulk_busy',
        kitRequests: 0,
        lastError: words,
        nextAttemptAt: this.now() + BULK_BUSY_WAIT_MS,
        steps: [step('warning', null, words)],
      }
    }
    if (err.status === 403) {
      const words = reasonWords('kit_plan_limit', { message: err.message })
      return { status: 'failed', reason: 'kit_plan_limit', kitRequests: 0, lastError: words, steps: [step('failed', null, words)] }
    }
    return null
  }

  /** What the plugin has now written to Kit for the member: the address, the name sent (or the one known), the fields. */
  private remember(kit: KitBulkApi, m: Member): Promise<void> {
    const subscriber = m.subscriber as KitSubscriber
    const { email, firstName } = m.planned.subscriber
    return this.writer.remember(m.delivery, kit.credentialId, {
      subscriberId: subscriber.id,
      email,
      firstName: m.nameSent ? firstName : (m.known?.firstName ?? subscriber.first_name),
      fields: { ...(m.known?.fields ?? {}), ...valuesOf(m.fields) },
    })
  }

  /** A member the batch carried through (already remembered as written): settled with its steps and marks. */
  private succeeded(m: Member, kitRequests: number): Outcome {
    const { email } = m.planned.subscriber
    const log = m.log
    if (m.known === null) log.add('subscriber.updated', email, 'Found or created in a bulk request.')
    else if (m.nameSent || m.changed.length > 0) log.add('subscriber.updated', email)
    else log.add('subscriber.unchanged', email)
    if (m.changed.length > 0) log.add('fields.written', labelsOf(m.fields, m.changed))
    for (const s of m.steps) {
      if (s.kind === 'tag.remove') log.add('tag.removed', s.tag.name)
      if (s.kind === 'tag.add') log.add('tag.added', s.tag.name)
      if (s.kind === 'form.add') log.add('form.added', s.form.name)
    }
    const words = m.warning ? reasonWords(m.warning) : null
    if (words) log.add('warning', null, words)
    return {
      status: 'succeeded',
      ...(m.warning ? { reason: m.warning } : {}),
      kitRequests,
      lastError: words,
      steps: log.steps,
      marks: m.planned.marks,
    }
  }
}

const live = (members: Member[]) => members.filter((m) => m.refused === undefined)

function* chunks<T>(items: T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BULK_BATCH) yield items.slice(i, i + BULK_BATCH)
}

/** Kit's words for a refused item, kept in the member's Activity when it goes the per-member way. */
const refusal = (errors: string[]) => `Kit refused this member in a bulk request ("${errors.join('; ')}"), so it was sent on its own.`

/**
 * Marks the members whose items Kit refused. A refusal naming no single item sent leaves every
 * member of the request in doubt: they all go the per-member way (whose requests change nothing
 * already done).
 */
function refuseItems<T>(chunk: { member: Member; item: T }[], failures: BulkFailure<T>[]): void {
  for (const f of failures) {
    const owners = f.item === null ? chunk : chunk.filter((c) => c.item === f.item)
    for (const { member } of owners) if (member.refused === undefined) member.refused = refusal(f.errors)
  }
}

/** `total` requests shared out as whole numbers over `n` deliveries, summing to `total`. */
function share(total: number, n: number): number[] {
  if (n === 0) return []
  const base = Math.floor(total / n)
  return Array.from({ length: n }, (_, i) => base + (i < total - base * n ? 1 : 0))
}
