/** The owner's view of deliveries: newest first (or oldest first for one member's story), filtered, paged; and Retry. */
import type Database from 'better-sqlite3'
import type { Delivery, DeliveryOrder, DeliveryPage, DeliveryStatus, DeliveryStep } from '../../shared/api.ts'
import { AppError } from '../lib/errors.ts'
import type { DeliveryQueue } from '../pipeline/queue.ts'

interface Row {
  seq: number
  id: string
  event_id: string
  event_type: string
  member_email: string
  status: string
  attempts: number
  last_error: string | null
  kit_requests: number
  steps: string
  next_attempt_at: number
  created_at: string
  updated_at: string
}

const toDto = (r: Row): Delivery => ({
  id: r.id,
  event_id: r.event_id,
  event_type: r.event_type,
  member_email: r.member_email,
  status: (r.status === 'held' ? 'pending' : r.status) as DeliveryStatus,
  attempts: r.attempts,
  last_error: r.last_error,
  kit_requests: r.kit_requests,
  steps: JSON.parse(r.steps) as DeliveryStep[],
  next_attempt_at: r.status === 'retrying' || r.status === 'held' ? new Date(r.next_attempt_at).toISOString() : null,
  created_at: r.created_at,
  updated_at: r.updated_at,
})

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
    private readonly sqlite: Database.Database,
    private readonly queue: DeliveryQueue,
    private readonly onRetry: () => void,
  ) {}

  list(communityId: string, q: DeliveryQuery): DeliveryPage {
    const limit = q.limit ?? 50
    const where = ['community_id = @communityId']
    const params: Record<string, unknown> = { communityId, limit: limit + 1 }
    if (q.status === 'pending') where.push(`status IN ('pending', 'held')`)
    else if (q.status) {
      where.push('status = @status')
      params.status = q.status
    }
    if (q.member) {
      where.push(`member_email LIKE @member ESCAPE '\\'`)
      params.member = `%${q.member.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    }
    const oldestFirst = q.order === 'oldest'
    if (q.cursor) {
      where.push(oldestFirst ? 'seq > @cursor' : 'seq < @cursor')
      params.cursor = decodeCursor(q.cursor)
    }
    const rows = this.sqlite
      .prepare(`SELECT * FROM deliveries WHERE ${where.join(' AND ')} ORDER BY seq ${oldestFirst ? 'ASC' : 'DESC'} LIMIT @limit`)
      .all(params) as Row[]
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return { items: page.map(toDto), next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null }
  }

  /** One delivery as the owner sees it, or null when the community has none of that id. */
  get(communityId: string, deliveryId: string): Delivery | null {
    const row = this.sqlite
      .prepare('SELECT * FROM deliveries WHERE community_id = ? AND id = ?')
      .get(communityId, deliveryId) as Row | undefined
    return row ? toDto(row) : null
  }

  /** Queues a failed delivery again and returns it as it now stands, so the panel updates the row in place. */
  retry(communityId: string, deliveryId: string): Delivery {
    const result = this.queue.retry(communityId, deliveryId, Date.now())
    if (result === 'not_found') throw new AppError(404, 'not_found', `There is no delivery ${deliveryId} in this community.`)
    if (result === 'not_failed') throw new AppError(409, 'not_failed', 'Only failed deliveries can be retried; this one is still in progress or already done.')
    this.onRetry()
    const delivery = this.get(communityId, deliveryId)
    if (!delivery) throw new AppError(404, 'not_found', `There is no delivery ${deliveryId} in this community.`)
    return delivery
  }
}
