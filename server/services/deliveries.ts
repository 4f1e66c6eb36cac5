/**
 * The owner's view of deliveries: newest first (or oldest first for one member's story, with what
 * Kit holds of that member), filtered, paged; and Retry, one or many.
 */
import {
  RETRY_MANY_MAX,
  type Delivery,
  type DeliveryOrder,
  type DeliveryPage,
  type DeliveryStatus,
  type DeliveryStep,
  type KitSubscriberState,
  type MemberKit,
  type ReplayableDeliveries,
  type RetryDeliveriesBody,
  type RetryDeliveriesResult,
} from '#shared/api.ts'
import { AppError } from '../lib/errors.ts'
import type { DeliveryQueue } from '../core/queue.ts'
import type { DeliveryReads, DeliveryRecord, Storage } from '../core/storage.ts'
import type { ReasonCode } from '../core/reasons.ts'
import { iso } from '../core/time.ts'

/** The skip reasons an owner can name to re-queue those deliveries together, as the codes they were recorded with. */
const SKIP_REASONS: Record<NonNullable<RetryDeliveriesBody['reason']>, ReasonCode> = {
  not_connected: 'not_connected',
}

const toDto = (r: DeliveryRecord): Delivery => ({
  id: r.id,
  event_id: r.event_id,
  event_type: r.event_type,
  member_email: r.member_email,
  status: (r.status === 'held' ? 'pending' : r.status) as DeliveryStatus,
  attempts: r.attempts,
  last_error: r.last_error,
  reason: r.reason,
  kit_requests: r.kit_requests,
  steps: JSON.parse(r.steps) as DeliveryStep[],
  next_attempt_at: r.status === 'retrying' || r.status === 'held' ? new Date(r.next_attempt_at).toISOString() : null,
  created_at: r.created_at,
  updated_at: r.updated_at,
})

const KIT_STATES: readonly string[] = ['active', 'inactive', 'cancelled', 'bounced', 'complained'] satisfies KitSubscriberState[]
const isKitState = (state: string): state is KitSubscriberState => KIT_STATES.includes(state)

/** What Kit holds of a member is read from these (the link the plugin wrote, and what it last saw). */
export type MemberKitReads = Pick<Storage, 'connections' | 'subscribers' | 'kitStates'>

const encodeCursor = (seq: number) => Buffer.from(`d:${seq}`).toString('base64url')
function decodeCursor(cursor: string): number {
  const match = /^d:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (!match) throw new AppError(400, 'invalid_request', 'querystring.cursor is not a cursor this API gave out')
  return Number(match[1])
}

export interface DeliveryQuery {
  status?: DeliveryStatus
  member?: string
  cursor?: string
  limit?: number
  /** `newest` (default) pages backwards from the latest; `oldest` reads forwards, in arrival order. */
  order?: DeliveryOrder
}

export class DeliveryService {
  constructor(
    private readonly reads: DeliveryReads,
    private readonly queue: DeliveryQueue,
    private readonly onRetry: () => void,
    private readonly isConnected: (communityId: string) => Promise<boolean>,
    private readonly kit: MemberKitReads,
  ) {}

  async list(communityId: string, q: DeliveryQuery): Promise<DeliveryPage> {
    const limit = q.limit ?? 50
    const oldestFirst = q.order === 'oldest'
    const cursor = q.cursor ? decodeCursor(q.cursor) : undefined
    const member = q.member?.trim().toLowerCase()
    const rows = await this.reads.list(communityId, {
      ...(q.status === 'pending' ? { statuses: ['pending', 'held'] } : q.status ? { statuses: [q.status] } : {}),
      ...(member ? { memberEmailContains: member } : {}),
      ...(cursor === undefined ? {} : oldestFirst ? { afterSeq: cursor } : { beforeSeq: cursor }),
      order: oldestFirst ? 'oldest' : 'newest',
      limit: limit + 1,
    })
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    const memberKit = member ? await this.memberKit(communityId, page, member) : null
    return {
      items: page.map(toDto),
      next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null,
      ...(memberKit ? { member_kit: memberKit } : {}),
    }
  }

  /**
   * What Kit holds of the one member whose whole email the search names, found through the
   * page's deliveries (so by member id, in this community only); null when the search names part
   * of an email, or several members, or none on this page.
   */
  private async memberKit(communityId: string, page: DeliveryRecord[], email: string): Promise<MemberKit | null> {
    const members = new Set(page.filter((r) => r.member_email.toLowerCase() === email).map((r) => r.member_id))
    const [memberId] = members
    if (members.size !== 1 || memberId === undefined) return null
    const connection = await this.kit.connections.get(communityId)
    if (!connection) return { state: null, learned_at: null, subscriber_id: null }
    const key = { communityId, credentialId: connection.credentialId, memberId }
    const seen = await this.kit.kitStates.seen(communityId, key.credentialId, memberId)
    if (seen && isKitState(seen.state)) {
      return { state: seen.state, learned_at: iso(seen.stateLearnedAt), subscriber_id: seen.subscriberId }
    }
    const written = await this.kit.subscribers.get(key)
    return { state: null, learned_at: null, subscriber_id: written?.subscriberId ?? null }
  }

  /** One delivery as the owner sees it, or null when the community has none of that id. */
  async get(communityId: string, deliveryId: string): Promise<Delivery | null> {
    const row = await this.reads.get(communityId, deliveryId)
    return row ? toDto(row) : null
  }

  /** Sends a failed or skipped delivery again (same ordering guard as a new event) and returns it as it now stands, so the panel updates the row in place. */
  async retry(communityId: string, deliveryId: string): Promise<Delivery> {
    const answer = await this.queue.retry(communityId, deliveryId, Date.now())
    if (answer.result === 'not_found') throw new AppError(404, 'not_found', `There is no delivery ${deliveryId} in this community.`)
    if (answer.result === 'not_retryable') {
      const status = answer.status === 'held' ? 'pending' : answer.status
      throw new AppError(409, 'not_retryable', `Only failed or skipped deliveries can be retried; this one is ${status}.`)
    }
    this.onRetry()
    const delivery = await this.get(communityId, deliveryId)
    if (!delivery) throw new AppError(404, 'not_found', `There is no delivery ${deliveryId} in this community.`)
    return delivery
  }

  /**
   * What a replay of the deliveries recorded while no Kit account was connected would send: how
   * many, for how many members, and how many of each event type (a handful of rows at most).
   */
  async replayable(communityId: string): Promise<ReplayableDeliveries> {
    const { types, members } = await this.reads.skippedSummary(communityId, 'not_connected')
    return { count: types.reduce((sum, t) => sum + t.count, 0), members, event_types: types }
  }

  /**
   * Re-queues, oldest event first, up to RETRY_MANY_MAX of the community's failed deliveries, or
   * of those skipped for the named reason: `not_connected` sends what was recorded while no Kit
   * account was connected, so it needs a connection now.
   */
  async retryMany(communityId: string, body: RetryDeliveriesBody): Promise<RetryDeliveriesResult> {
    if (body.status === 'skipped' && !body.reason) {
      throw new AppError(
        400,
        'invalid_request',
        'body.reason is required with status "skipped": use "not_connected" to send the events recorded while no Kit account was connected.',
      )
    }
    if (body.status === 'failed' && body.reason) {
      throw new AppError(
        400,
        'invalid_request',
        'body.reason applies only to status "skipped"; leave it out to retry every failed delivery.',
      )
    }
    if (body.reason === 'not_connected' && !(await this.isConnected(communityId))) {
      throw new AppError(
        409,
        'not_connected',
        'No Kit account is connected: connect one under Connection first, then send the events recorded meanwhile.',
      )
    }
    const reason = body.reason ? SKIP_REASONS[body.reason] : undefined
    const result = await this.queue.retryMany(
      communityId,
      { status: body.status, ...(reason ? { reason } : {}) },
      RETRY_MANY_MAX,
      Date.now(),
    )
    if (result.queued > 0) this.onRetry()
    return result
  }
}
