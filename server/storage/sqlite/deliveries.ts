/** The owner's Activity reads of deliveries, from the embedded database. */
import type Database from 'better-sqlite3'
import type { ReasonCode } from '../../core/reasons.ts'
import type { DeliveryReadFilter, DeliveryReads, DeliveryRecord } from '../../core/storage.ts'

/** The columns the owner's Activity shows; leases and payloads stay inside the queue. */
const DELIVERY_RECORD_COLUMNS = `seq, id, event_id, event_type, member_id, member_email, status, attempts, last_error,
  reason, kit_requests, steps, next_attempt_at, created_at, updated_at`

export class SqliteDeliveryReads implements DeliveryReads {
  constructor(private readonly sqlite: Database.Database) {}

  async list(communityId: string, filter: DeliveryReadFilter): Promise<DeliveryRecord[]> {
    const where = ['community_id = @communityId']
    const params: Record<string, unknown> = { communityId, limit: filter.limit }
    if (filter.statuses) {
      where.push('status IN (SELECT value FROM json_each(@statuses))')
      params.statuses = JSON.stringify(filter.statuses)
    }
    // instr, not LIKE: the owner's text is matched literally, `%` and `_` included.
    if (filter.memberEmailContains) {
      where.push('instr(lower(member_email), @member) > 0')
      params.member = filter.memberEmailContains.toLowerCase()
    }
    if (filter.afterSeq !== undefined) {
      where.push('seq > @afterSeq')
      params.afterSeq = filter.afterSeq
    }
    if (filter.beforeSeq !== undefined) {
      where.push('seq < @beforeSeq')
      params.beforeSeq = filter.beforeSeq
    }
    return this.sqlite
      .prepare(
        `SELECT ${DELIVERY_RECORD_COLUMNS} FROM deliveries WHERE ${where.join(' AND ')}
          ORDER BY seq ${filter.order === 'oldest' ? 'ASC' : 'DESC'} LIMIT @limit`,
      )
      .all(params) as DeliveryRecord[]
  }

  async get(communityId: string, deliveryId: string): Promise<DeliveryRecord | undefined> {
    return this.sqlite
      .prepare(`SELECT ${DELIVERY_RECORD_COLUMNS} FROM deliveries WHERE community_id = ? AND id = ?`)
      .get(communityId, deliveryId) as DeliveryRecord | undefined
  }

  async skippedSummary(communityId: string, reason: ReasonCode): Promise<{ types: { event_type: string; count: number }[]; members: number }> {
    const params = { communityId, reason }
    const matching = `FROM deliveries WHERE community_id = @communityId AND status = 'skipped' AND reason = @reason`
    const types = this.sqlite
      .prepare(`SELECT event_type, count(*) AS count ${matching} GROUP BY event_type ORDER BY count DESC, event_type`)
      .all(params) as { event_type: string; count: number }[]
    const { members } = this.sqlite.prepare(`SELECT count(DISTINCT member_id) AS members ${matching}`).get(params) as { members: number }
    return { types, members }
  }
}
