/**
 * The plugin learns what Kit knows of its members and tells the platform (contract §7): a poll of
 * `GET /v4/subscribers?status=all&updated_after=…` per connection every KIT_POLL_INTERVAL_S, and,
 * with PUBLIC_URL, Kit webhooks whose unsigned deliveries are only a cue to re-read the subscriber.
 * Both go through one compare: a new unsubscribed / bounced / complained state, or a first name or
 * email changed in Kit that the plugin did not write itself, becomes an event; what was seen is kept.
 *
 * The poll is the lowest priority there is: it sends a request only while the credential's budget
 * has spare room (nobody waiting, no 429 block, at least a quarter of the background slots free),
 * never waits for a slot, and otherwise tries again next interval. Dependencies are injected.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { PlatformEventType } from '#shared/platform-events.ts'
import type { BudgetUsage } from '../kit/budget.ts'
import type { KitCallOptions, KitWatchApi } from '../kit/client.ts'
import { isKitError } from '../kit/errors.ts'
import type { KitSubscriber } from '../core/kit.ts'
import type { KnownKitState } from '../core/planner.ts'
import type { KitAuth, KitStateMemory, MemberKey, OwnKitWrite, OwnKitWrites } from '../core/ports.ts'
import type { KitMemberState, KitStateRepository, KnownKitMember } from '../core/storage.ts'
import type { Changes, EmitInput, EmitResult } from './platform-events.ts'

/** Kit's state → the event that reports reaching it. */
const STATE_EVENTS: Record<string, PlatformEventType> = {
  cancelled: 'kit.subscriber.unsubscribed',
  bounced: 'kit.subscriber.bounced',
  complained: 'kit.subscriber.complained',
}

/** The legacy webhook events registered per connection (Kit has none for a rename). */
export const WATCHED_WEBHOOKS = [
  'subscriber.subscriber_unsubscribe',
  'subscriber.subscriber_bounce',
  'subscriber.subscriber_complain',
] as const

const DAY_MS = 24 * 60 * 60_000

/**
 * Kit filters `updated_after` by whole days in the account's time zone: the day before the UTC
 * date of `from` starts before `from` in every time zone, so nothing after `from` is missed.
 */
export function updatedAfter(from: number): string {
  return new Date(from - DAY_MS).toISOString().slice(0, 10)
}

/** What one look at a subscriber means: the events to emit and what to keep as seen. */
export function compare(
  member: KnownKitMember,
  kit: KitSubscriber,
  now: number,
): { events: Omit<EmitInput, 'communityId'>[]; seen: KitMemberState } {
  const seen = member.seen
  const events: Omit<EmitInput, 'communityId'>[] = []
  const memberRef = { id: member.memberId, email: member.writtenEmail }
  const kitSide = { subscriber_id: kit.id, state: kit.state, email_address: kit.email_address, first_name: kit.first_name }
  const stateType = STATE_EVENTS[kit.state]
  if (stateType && seen?.state !== kit.state) events.push({ type: stateType, member: memberRef, kit: kitSide, observedAt: now })
  const changes: Changes = {}
  const nameBefore = seen ? seen.firstName : member.writtenFirstName
  if (kit.first_name !== nameBefore && kit.first_name !== member.writtenFirstName)
    changes.first_name = { from: nameBefore, to: kit.first_name }
  const emailBefore = (seen ? seen.email : member.writtenEmail).toLowerCase()
  const emailNow = kit.email_address.toLowerCase()
  if (emailNow !== emailBefore && emailNow !== member.writtenEmail.toLowerCase())
    changes.email_address = { from: emailBefore, to: emailNow }
  if (Object.keys(changes).length > 0)
    events.push({ type: 'kit.subscriber.updated', member: memberRef, kit: kitSide, changes, observedAt: now })
  return {
    events,
    seen: {
      subscriberId: kit.id,
      state: kit.state,
      stateLearnedAt: seen && seen.state === kit.state ? seen.stateLearnedAt : now,
      firstName: kit.first_name,
      email: emailNow,
    },
  }
}

/**
 * The plugin's memory of members' Kit side, used by deliveries: the unsubscribe about to be sent is
 * kept as the state seen (with the name and email last seen, or else last written), so neither the
 * poll nor a webhook reports it back; and every subscriber Kit answers a delivery with goes through
 * the same compare as the poll's, so an unsubscribe, bounce or complaint learnt from an answer is
 * reported once. Only storage and the emit port are touched, so the pipeline holds it without the watch.
 */
export class KitSideMemory implements OwnKitWrites, KitStateMemory {
  constructor(
    private readonly states: KitStateRepository,
    private readonly emit: ((input: EmitInput) => Promise<EmitResult>) | null,
    private readonly now: () => number = Date.now,
  ) {}

  async unsubscribing(write: OwnKitWrite): Promise<void> {
    const { communityId, credentialId, memberId, subscriberId } = write
    const seen = await this.states.seen(communityId, credentialId, memberId)
    const now = this.now()
    await this.states.record(
      communityId,
      credentialId,
      memberId,
      {
        subscriberId,
        state: 'cancelled',
        stateLearnedAt: seen?.state === 'cancelled' ? seen.stateLearnedAt : now,
        firstName: seen ? seen.firstName : write.firstName,
        email: seen ? seen.email : write.email.toLowerCase(),
      },
      now,
    )
  }

  async stateOf(key: MemberKey): Promise<KnownKitState | null> {
    const seen = await this.states.seen(key.communityId, key.credentialId, key.memberId)
    return seen ? { state: seen.state, learnedAt: seen.stateLearnedAt } : null
  }

  async learned(key: MemberKey, subscriber: KitSubscriber): Promise<KnownKitState> {
    const { communityId, credentialId, memberId } = key
    const linked = await this.states.known(communityId, credentialId, [{ id: subscriber.id, email: subscriber.email_address }])
    // A stale event's lookup leaves no link: compare against what Kit answered, so only a state is news.
    const member = linked.find((m) => m.memberId === memberId) ?? {
      memberId,
      subscriberId: subscriber.id,
      writtenEmail: subscriber.email_address,
      writtenFirstName: subscriber.first_name,
      seen: await this.states.seen(communityId, credentialId, memberId),
    }
    const now = this.now()
    const { events, seen } = compare(member, subscriber, now)
    if (this.emit) for (const event of events) await this.emit({ ...event, communityId })
    const before = member.seen
    const same =
      before !== null &&
      before.subscriberId === seen.subscriberId &&
      before.state === seen.state &&
      before.firstName === seen.firstName &&
      before.email === seen.email
    if (!same) await this.states.record(communityId, credentialId, memberId, seen, now)
    return { state: seen.state, learnedAt: seen.stateLearnedAt }
  }
}

/** A community's saved credential as the watch needs it (null: none, or unreadable). */
export interface WatchCredential {
  auth: KitAuth
  credentialId: string
  status: string
}

export interface KitWatchDeps {
  states: KitStateRepository
  /** Community id → credential id of every working connection. */
  connectedCredentials(): Promise<Map<string, string>>
  credential(communityId: string): Promise<WatchCredential | null>
  /** Kit refused the key (401). */
  markInvalid(communityId: string, credentialId: string): Promise<void>
  kitFor(auth: KitAuth, options: KitCallOptions): KitWatchApi
  budget: { usage(credentialId: string): BudgetUsage; rateOf(credentialId: string): { limit: number; interactiveReserve: number } }
  emit(input: EmitInput): Promise<EmitResult>
  log: FastifyBaseLogger
  intervalMs: number
  /** The plugin's public origin; webhooks are registered only with it. */
  publicUrl: string | null
  /** How often due connections are looked for; default a tenth of the interval, from 50 ms to 1 s. */
  tickMs?: number
  now?: () => number
}

export type PollOutcome = 'polled' | 'not_due' | 'no_room' | 'failed'

export class KitWatch {
  private readonly now: () => number
  private timer: NodeJS.Timeout | null = null
  private ticking: Promise<void> | null = null
  private readonly work = new Set<Promise<unknown>>()
  private readonly stopping = new AbortController()
  /** When each connection's poll is next due, as last read: no query for it before then. */
  private readonly dueAt = new Map<string, number>()
  /** The connections as last listed, and when: listed again once a poll is due, a connection changed, or an interval passed. */
  private connected = new Map<string, string>()
  private listedAt = Number.NEGATIVE_INFINITY

  constructor(private readonly d: KitWatchDeps) {
    this.now = d.now ?? Date.now
  }

  start(): void {
    const tickMs = this.d.tickMs ?? Math.max(50, Math.min(1000, Math.floor(this.d.intervalMs / 10)))
    const run = () => {
      this.ticking = this.tick().finally(() => {
        this.ticking = null
        if (!this.stopping.signal.aborted) this.timer = setTimeout(run, tickMs)
      })
    }
    run()
  }

  async stop(): Promise<void> {
    this.stopping.abort()
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    await this.ticking
    await Promise.allSettled([...this.work])
  }

  /** A connection was made or removed here: the next tick lists them again. */
  connectionsChanged(): void {
    this.listedAt = Number.NEGATIVE_INFINITY
  }

  /**
   * Polls every connection whose poll is due and whose budget has spare room. An idle tick reads
   * nothing: the connections are listed again only when a poll is due, a connection changed here,
   * or an interval has passed (one made on another instance).
   */
  async tick(): Promise<void> {
    const now = this.now()
    const due = [...this.dueAt.values()].some((at) => at <= now)
    if (due || this.connected.size > this.dueAt.size || now - this.listedAt >= this.d.intervalMs) {
      try {
        this.connected = await this.d.connectedCredentials()
        this.listedAt = now
      } catch (err) {
        this.d.log.warn({ err }, 'kit watch could not list the connections')
        return
      }
    }
    const connected = this.connected
    for (const known of this.dueAt.keys()) if (!connected.has(known)) this.dueAt.delete(known)
    for (const [communityId, credentialId] of connected) {
      if (this.stopping.signal.aborted) return
      if ((this.dueAt.get(communityId) ?? 0) > this.now()) continue
      try {
        await this.pollConnection(communityId, credentialId)
      } catch (err) {
        this.d.log.warn({ err, communityId }, 'kit watch poll failed')
      }
    }
  }

  /** Spare room: nobody waits, no 429 block, and a quarter of the background slots are free. */
  private hasRoom(credentialId: string): boolean {
    const usage = this.d.budget.usage(credentialId)
    const rate = this.d.budget.rateOf(credentialId)
    const background = rate.limit - rate.interactiveReserve
    const headroom = Math.max(1, Math.floor(background / 4))
    const blocked = usage.blockedUntil !== null && usage.blockedUntil > this.now()
    return !blocked && usage.waiting === 0 && usage.inWindow + usage.inFlight + headroom <= background
  }

  async pollConnection(communityId: string, credentialId: string): Promise<PollOutcome> {
    if (!this.hasRoom(credentialId)) return 'no_room'
    const started = this.now()
    const claim = await this.d.states.claimPoll(communityId, credentialId, started, this.d.intervalMs)
    if ('dueAt' in claim) {
      this.dueAt.set(communityId, claim.dueAt)
      return 'not_due'
    }
    this.dueAt.set(communityId, started + this.d.intervalMs)
    const credential = await this.d.credential(communityId)
    if (!credential || credential.status !== 'connected' || credential.credentialId !== credentialId) return 'failed'
    const kit = this.kitOf(credential)
    const filter = { status: 'all', updated_after: updatedAfter(claim.polledFrom) }
    let after: string | null = null
    try {
      do {
        if (after !== null && !this.hasRoom(credentialId)) return 'no_room'
        const page: { subscribers: KitSubscriber[]; next: string | null } = await kit.listSubscribersPage(filter, after)
        await this.observe(communityId, credentialId, page.subscribers)
        after = page.next
      } while (after !== null)
    } catch (err) {
      return this.failed(err, communityId, credentialId)
    }
    await this.d.states.pollDone(communityId, started)
    return 'polled'
  }

  private kitOf(credential: WatchCredential): KitWatchApi {
    return this.d.kitFor(credential.auth, {
      credentialId: credential.credentialId,
      priority: 'background',
      waitForBudget: false,
      retryOn429: false,
      signal: this.stopping.signal,
    })
  }

  private async failed(err: unknown, communityId: string, credentialId: string): Promise<'failed' | 'no_room'> {
    if (err instanceof Error && err.name === 'BudgetSpentError') return 'no_room'
    if (isKitError(err) && err.kind === 'invalid_credentials') {
      await this.d.markInvalid(communityId, credentialId)
      return 'failed'
    }
    if (this.stopping.signal.aborted) return 'failed'
    this.d.log.warn(
      { communityId, credentialId, code: isKitError(err) ? err.kind : 'error' },
      'kit watch poll did not complete; the next one looks again',
    )
    return 'failed'
  }

  /** Compares what Kit shows with what the plugin knows; emits what is news and keeps what was seen. */
  async observe(communityId: string, credentialId: string, subscribers: KitSubscriber[]): Promise<number> {
    if (subscribers.length === 0) return 0
    const known = await this.d.states.known(
      communityId,
      credentialId,
      subscribers.map((s) => ({ id: s.id, email: s.email_address })),
    )
    const byId = new Map(subscribers.map((s) => [s.id, s]))
    const byEmail = new Map(subscribers.map((s) => [s.email_address.toLowerCase(), s]))
    let emitted = 0
    for (const member of known) {
      const kit = byId.get(member.subscriberId) ?? byEmail.get(member.writtenEmail.toLowerCase())
      if (!kit) continue
      const now = this.now()
      const { events, seen } = compare(member, kit, now)
      for (const event of events) {
        if ((await this.d.emit({ ...event, communityId })).status === 'stored') emitted += 1
      }
      await this.d.states.record(communityId, credentialId, member.memberId, seen, now)
    }
    return emitted
  }

  /** Registers the connection's webhooks (only with PUBLIC_URL), replacing any it had. */
  async registerWebhooks(communityId: string): Promise<void> {
    if (this.d.publicUrl === null) return
    const credential = await this.d.credential(communityId)
    if (!credential || credential.status !== 'connected') return
    const kit = this.d.kitFor(credential.auth, { credentialId: credential.credentialId, priority: 'interactive' })
    await this.removeWebhooks(communityId, kit)
    for (const event of WATCHED_WEBHOOKS) {
      const token = randomBytes(24).toString('base64url')
      const record = { token, communityId, credentialId: credential.credentialId, event, kitWebhookId: null, createdAt: this.now() }
      // Stored before Kit knows it, so a delivery arriving at once finds it.
      await this.d.states.saveWebhook(record)
      const { id } = await kit.createWebhook(`${this.d.publicUrl}/kit/webhooks/${token}`, event)
      await this.d.states.saveWebhook({ ...record, kitWebhookId: id })
    }
  }

  /** Removes the connection's webhooks from Kit (with its key while it is still saved) and forgets them. */
  async removeWebhooks(communityId: string, kit?: KitWatchApi): Promise<void> {
    const hooks = await this.d.states.webhooks(communityId)
    if (hooks.length === 0) return
    let api = kit
    if (!api) {
      const credential = await this.d.credential(communityId)
      if (credential) api = this.d.kitFor(credential.auth, { credentialId: credential.credentialId, priority: 'interactive' })
    }
    for (const hook of hooks) {
      if (api && hook.kitWebhookId !== null && hook.credentialId === api.credentialId) await api.deleteWebhook(hook.kitWebhookId)
      await this.d.states.forgetWebhook(hook.token)
    }
  }

  /**
   * A webhook delivery arrived at `token`: false when the token is unknown. Otherwise the
   * subscriber it names is re-read from Kit in the background (the delivery is unsigned, so only
   * Kit's own answer is believed) and compared like the poll's.
   */
  async webhook(token: string, body: unknown): Promise<boolean> {
    const hook = await this.d.states.webhookByToken(token)
    if (!hook) return false
    const subscriber = isObject(body) && isObject(body.subscriber) ? body.subscriber : null
    const id = subscriber && Number.isSafeInteger(subscriber.id) && (subscriber.id as number) > 0 ? (subscriber.id as number) : null
    if (id === null || this.stopping.signal.aborted) return true
    const task = this.reread(hook.communityId, hook.credentialId, id).catch((err: unknown) => {
      this.d.log.warn(
        { communityId: hook.communityId, code: isKitError(err) ? err.kind : 'error' },
        'kit watch could not re-read a webhook subscriber',
      )
    })
    this.work.add(task)
    void task.finally(() => this.work.delete(task))
    return true
  }

  private async reread(communityId: string, credentialId: string, subscriberId: number): Promise<void> {
    const credential = await this.d.credential(communityId)
    if (!credential || credential.status !== 'connected' || credential.credentialId !== credentialId) return
    const kit = this.d.kitFor(credential.auth, { credentialId, priority: 'background', signal: this.stopping.signal })
    const subscriber = await kit.getSubscriber(subscriberId)
    if (subscriber) await this.observe(communityId, credentialId, [subscriber])
  }

  /** Resolves once every webhook re-read under way has finished. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.work])
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
