/**
 * The delivery queue behind one small interface, asynchronous so that it can live in another
 * process: the SQLite implementation is the embedded default (one process per database file);
 * the PostgreSQL one serves several instances (claims with FOR UPDATE SKIP LOCKED, leases that
 * expire).
 */
import type { DeliveryStatus, DeliveryStep } from '#shared/api.ts'
import type { ReasonCode } from './reasons.ts'
import type { ClaimTurnsOrder } from './turns.ts'

export type InternalStatus = DeliveryStatus | 'held'

/**
 * The reason of a delivery waiting for Kit's subscriber list to catch up. Such a wait is not an
 * outage: Kit answering other deliveries does not bring it forward.
 */
export const LIST_LAG_REASON: ReasonCode = 'list_lag'

/** The event a delivery carries, from its arrival to its last attempt. */
export interface DeliveryEvent {
  communityId: string
  eventId: string
  eventType: string
  memberId: string
  memberEmail: string
  eventTime: number
  payload: string
  receivedAt: number
}

export interface NewDelivery extends DeliveryEvent {
  /** Set when the event is recorded but nothing will be sent (unknown type, no Kit account): the words. */
  skippedReason?: string
  /** The skip's reason code, with skippedReason. */
  reason?: ReasonCode
}

export interface EnqueueResult {
  accepted: boolean
  deliveryId: string | null
}

export interface QueuedDelivery extends DeliveryEvent {
  seq: number
  id: string
  attempts: number
  kitRequests: number
  /**
   * Recorded while no Kit account was connected and sent again by the owner's replay (not yet
   * attempted since): such work may go in bulk batches, as an initial sync's members do.
   */
  replay?: 0 | 1
}

export interface ClaimOptions {
  owner: string
  limit: number
  leaseMs: number
  now: number
  /** Communities not to claim for now (their Kit budget is spent, or they are already busy). */
  exclude: string[]
  /**
   * The order communities take turns in (see takeTurns and FairShare); absent: the community
   * whose first claimable delivery is oldest first, each served once per round.
   */
  turns?: ClaimTurnsOrder
}

export interface BulkClaimOptions {
  owner: string
  communityId: string
  limit: number
  leaseMs: number
  now: number
}

export interface Outcome {
  /** `pending`: given back before it could finish (Kit's budget was spent); not a failed attempt. */
  status: 'succeeded' | 'skipped' | 'failed' | 'retrying' | 'held' | 'pending'
  lastError: string | null
  /** Why it was skipped, is waiting or is held (absent: none). */
  reason?: ReasonCode
  kitRequests: number
  /** What this attempt did in Kit, step by step (kept for the owner's Activity). */
  steps?: DeliveryStep[]
  /** For `retrying` and `pending`: when to try again (epoch ms). */
  nextAttemptAt?: number
  /** Ordering marks to set atomically with the outcome (only if the lease is still held). */
  marks?: OrderingMark[]
}

/** The newest event applied in one ordering scope: older events in the scope never undo it. */
export interface OrderingMark {
  scope: string
  eventTime: number
  eventId: string
}

/** A member whose newest event is a settled `user.deleted`, and that event's time. */
export interface DeletedMember {
  communityId: string
  memberId: string
  deletedAt: number
}

export interface Purged {
  deliveries: number
  events: number
}

/** An event as the queue holds it until retention, for a preview of the mappings. */
export interface HeldEvent {
  type: string
  memberId: string
  /** The event's time (epoch ms), as recorded at intake. */
  eventTime: number
  /** The envelope, JSON, as received. */
  payload: string
}

export interface DeliveryListFilter {
  status?: DeliveryStatus
  memberEmail?: string
  cursor?: number
  limit: number
}

/** Which finished deliveries can be sent again: failed ones, and skipped ones (with their reason). */
export const RETRYABLE_STATUSES = ['failed', 'skipped'] as const
export type RetryableStatus = (typeof RETRYABLE_STATUSES)[number]

export interface RetryManyFilter {
  status: RetryableStatus
  /** Only deliveries skipped for this reason. */
  reason?: ReasonCode
}

export interface RetryManyResult {
  queued: number
  /** Deliveries that match but were left for another call (past the limit). */
  remaining: number
}

export interface DeliveryQueue {
  /**
   * Stores the event and its delivery atomically and resolves once they are committed; `accepted`
   * is false when the id was already seen. Concurrent calls may share one commit.
   */
  enqueue(delivery: NewDelivery): Promise<EnqueueResult>
  /**
   * Leases at most `limit` due deliveries, at most one per member, none of a member whose earlier
   * event is still waiting or in flight (on any instance).
   */
  claim(options: ClaimOptions): Promise<QueuedDelivery[]>
  /**
   * Leases at most `limit` of one community's due deliveries that may go in a bulk batch: an
   * initial sync's members (snapshots) and replayed work (see QueuedDelivery.replay), under the
   * same rules as `claim` — at most one per member, none ahead of the member's earlier events.
   */
  claimBulk(options: BulkClaimOptions): Promise<QueuedDelivery[]>
  /** Records an attempt's outcome and its ordering marks in one transaction; ignored if the lease was lost. */
  settle(seq: number, owner: string, outcome: Outcome): Promise<boolean>
  /** The community's ordering marks for these scopes (absent: none set). */
  marks(communityId: string, scopes: string[]): Promise<Map<string, OrderingMark>>
  /**
   * At start: give back leases left by a process that died. The embedded queue has one process
   * per database file, so every lease found at start is orphaned; a shared queue lets them
   * expire instead and gives back nothing here.
   */
  recover(): Promise<number>
  /** Gives back claimed work untouched (shutdown). */
  release(owner: string): Promise<number>
  /** A working key was saved: held deliveries of the community go back to the queue. */
  resumeHeld(communityId: string, now: number): Promise<number>
  /**
   * Kit answered again for this community: deliveries backing off from an outage are due now
   * (not those waiting for Kit's subscriber list, whose wait is about time, not Kit being down).
   */
  expediteRetries(communityId: string, now: number): Promise<number>
  /**
   * An owner asked to retry a failed or skipped delivery: it goes back to the queue as pending and
   * runs through the same ordering guard as a new event. `not_retryable` carries the status it has.
   */
  retry(
    communityId: string,
    deliveryId: string,
    now: number,
  ): Promise<{ result: 'queued' | 'not_found' } | { result: 'not_retryable'; status: string }>
  /**
   * Re-queues, in one transaction and oldest event first, at most `limit` of the community's
   * deliveries matching the filter.
   */
  retryMany(communityId: string, filter: RetryManyFilter, limit: number, now: number): Promise<RetryManyResult>
  /**
   * Retention, one batch in one transaction: deletes at most `limit` finished deliveries
   * (succeeded, failed, skipped) last updated before `before` (epoch ms), oldest first, with their
   * events. Work still to do (pending, retrying, held) is never deleted, whatever its age.
   */
  purgeFinished(before: number, limit: number): Promise<Purged>
  /**
   * When the member counts as deleted, the time of the `user.deleted` event that deleted them: it
   * is their newest event, nothing of theirs waits, and it settled for good — succeeded, or skipped
   * for any reason but `not_connected`; a failed one, or one skipped while no Kit account was
   * connected (both may be sent again), only once last updated before `replayableBefore`. Else null.
   */
  deletion(communityId: string, memberId: string, replayableBefore: number): Promise<number | null>
  /**
   * Up to `limit` members who count as deleted (as `deletion` says) and still have a finished
   * delivery from before their deletion whose personal data is not purged: what a crash between
   * settling and purging left, or what arrived late.
   */
  deletedWithPersonalData(replayableBefore: number, limit: number): Promise<DeletedMember[]>
  /**
   * Purges the personal data of the member's finished deliveries and events up to `upTo` (their
   * deletion's event time): emails emptied, addresses and names blanked in each delivery's words,
   * each event's body cut to its id, type and member id. Returns the deliveries changed.
   */
  scrubMember(communityId: string, memberId: string, upTo: number): Promise<number>
  /**
   * The community's newest held events of each of these types: at most `perType` of each, newest
   * first within a type (ties: the later stored first). One statement, each type read along
   * events_recent_idx, so the cost follows `perType`, not how many events are held.
   */
  recentEvents(communityId: string, types: readonly string[], perType: number): Promise<HeldEvent[]>
  /** Earliest time a waiting delivery becomes due, or null. */
  nextDueAt(): Promise<number | null>
  /** Waiting deliveries by internal status (pending, retrying, held). */
  depth(): Promise<Record<string, number>>
}
