/**
 * The port through which the plugin tells the platform what it learnt in Kit (contract §7). Each
 * event becomes a row of the outbox, with its id and its CloudEvent body fixed once, and the sender
 * (platform-outbox.ts) delivers it. Knows nothing of Kit, routes or services: callers hand it what
 * they observed.
 */
import { randomBytes } from 'node:crypto'
import { SUBSCRIBER_STATE_TYPES, type PlatformEventType } from '#shared/platform-events.ts'
import type { FailureTally, NewPlatformEvent, PlatformOutbox } from '../core/storage.ts'

export const PLATFORM_EVENT_SOURCE = 'kit-for-appstation'
/** Retried for at least this long before an event is marked failed. */
export const GIVE_UP_AFTER_MS = 72 * 60 * 60_000
/** At most one `kit.deliveries.failing` per community in this long. */
export const FAILING_QUIET_MS = 60 * 60_000
/** How many reason codes `data.reasons` names at most. */
const TOP_REASONS = 5

export interface KitSide {
  subscriber_id: number
  state: string
  email_address: string
  first_name: string | null
}

export type Changes = Partial<Record<'first_name' | 'email_address', { from: string | null; to: string | null }>>

export interface EmitInput {
  type: PlatformEventType
  communityId: string
  /** Required for `kit.subscriber.*`; absent for the owner's trouble events. */
  member?: { id: string; email: string }
  kit?: KitSide
  changes?: Changes
  /** When the plugin learnt it (epoch ms or a Date). */
  observedAt: number | Date
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** `kitevt_` + 26 characters: 10 of time (ms) then 16 random, so ids sort by when they were made. */
export function newPlatformEventId(now: number = Date.now()): string {
  let time = ''
  let t = now
  for (let i = 0; i < 10; i += 1) {
    time = CROCKFORD[t % 32] + time
    t = Math.floor(t / 32)
  }
  const random = [...randomBytes(16)].map((b) => CROCKFORD[b % 32]).join('')
  return `kitevt_${time}${random}`
}

/** RFC 3339 in UTC, to the second, as the contract shows it. */
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')

/** The CloudEvents 1.0 structured body of §7. */
export function cloudEvent(id: string, input: EmitInput & { data?: Record<string, unknown> }, now: number): Record<string, unknown> {
  const observedAt = +input.observedAt
  const data: Record<string, unknown> = {
    ...(input.member ? { member: { id: input.member.id, email: input.member.email } } : {}),
    ...(input.kit ? { kit: input.kit } : {}),
    ...(input.changes ? { changes: input.changes } : {}),
    ...input.data,
    observed_at: rfc3339(observedAt),
  }
  return {
    specversion: '1.0',
    id,
    source: PLATFORM_EVENT_SOURCE,
    type: input.type,
    time: rfc3339(now),
    communityid: input.communityId,
    ...(input.member ? { subject: `members/${input.member.id}` } : {}),
    data,
  }
}

export class PlatformEventError extends Error {
  constructor(readonly code: 'member_required' | 'member_not_allowed' | 'kit_state_required') {
    super(code)
    this.name = 'PlatformEventError'
  }
}

export interface PlatformEventsOptions {
  outbox: PlatformOutbox
  /** False without PLATFORM_EVENTS_URL and _SECRET: nothing is stored, nothing sent. */
  configured: boolean
  /** The sender has new work. */
  notify: () => void
  now?: () => number
}

export type EmitResult = { status: 'stored'; id: string } | { status: 'reported_before' } | { status: 'not_configured' }

export class PlatformEvents {
  private readonly now: () => number

  constructor(private readonly o: PlatformEventsOptions) {
    this.now = o.now ?? Date.now
  }

  get configured(): boolean {
    return this.o.configured
  }

  /**
   * Stores an event for the platform. A `kit.subscriber.*` state (unsubscribed, bounced,
   * complained) is stored once per member, state and type: reaching it again is not news.
   */
  async emit(input: EmitInput): Promise<EmitResult> {
    const isSubscriber = input.type.startsWith('kit.subscriber.')
    if (isSubscriber && !input.member) throw new PlatformEventError('member_required')
    if (!isSubscriber && input.member) throw new PlatformEventError('member_not_allowed')
    const once = (SUBSCRIBER_STATE_TYPES as readonly string[]).includes(input.type)
    if (once && !input.kit) throw new PlatformEventError('kit_state_required')
    if (!this.o.configured) return { status: 'not_configured' }
    const now = this.now()
    const id = newPlatformEventId(now)
    const stored = await this.o.outbox.add(
      {
        id,
        communityId: input.communityId,
        type: input.type,
        memberId: input.member?.id ?? null,
        onceKey: once ? JSON.stringify([input.member?.id, input.type, input.kit?.state]) : null,
        body: JSON.stringify(cloudEvent(id, input, now)),
        observedAt: +input.observedAt,
        giveUpAt: now + GIVE_UP_AFTER_MS,
      },
      now,
    )
    if (!stored) return { status: 'reported_before' }
    this.o.notify()
    return { status: 'stored', id }
  }

  /** Kit stopped accepting the community's credentials. */
  connectionInvalid(communityId: string): Promise<EmitResult> {
    return this.emit({ type: 'kit.connection.invalid', communityId, observedAt: this.now() })
  }

  /**
   * A delivery failed for good with this reason code: tallied, and reported in a
   * `kit.deliveries.failing` unless one went out in the last hour (the tally then waits for
   * `reportWaitingFailures`).
   */
  async deliveryFailed(communityId: string, reason: string): Promise<EmitResult | null> {
    if (!this.o.configured) return { status: 'not_configured' }
    await this.o.outbox.recordFailure(communityId, reason, this.now())
    return this.reportFailures(communityId)
  }

  /**
   * Reports every community's tallied failures whose quiet hour is over (the sender calls it when
   * idle): communities still in their quiet hour are not even looked at.
   */
  async reportWaitingFailures(): Promise<number> {
    if (!this.o.configured) return 0
    let reported = 0
    for (const communityId of await this.o.outbox.unreportedFailures(this.now() - FAILING_QUIET_MS)) {
      if ((await this.reportFailures(communityId))?.status === 'stored') reported += 1
    }
    return reported
  }

  private async reportFailures(communityId: string): Promise<EmitResult | null> {
    const now = this.now()
    const build = (tally: FailureTally): NewPlatformEvent => {
      const id = newPlatformEventId(now)
      const data = { failed: tally.failed, reasons: tally.reasons.slice(0, TOP_REASONS).map((r) => r.reason) }
      const body = cloudEvent(id, { type: 'kit.deliveries.failing', communityId, observedAt: now, data }, now)
      return {
        id,
        communityId,
        type: 'kit.deliveries.failing',
        memberId: null,
        onceKey: null,
        body: JSON.stringify(body),
        observedAt: now,
        giveUpAt: now + GIVE_UP_AFTER_MS,
      }
    }
    const event = await this.o.outbox.reportFailures(communityId, now - FAILING_QUIET_MS, now, build)
    if (!event) return null
    this.o.notify()
    return { status: 'stored', id: event.id }
  }
}
