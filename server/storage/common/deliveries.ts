/** The owner's Activity reads of deliveries, written once for both dialects. */
import { sql, type SQL } from 'drizzle-orm'
import type { ReasonCode } from '../../core/reasons.ts'
import type { DeliveryReadFilter, DeliveryReads, DeliveryRecord } from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'

/** The columns the owner's Activity shows; leases and payloads stay inside the queue. */
const COLUMNS = sql.raw(`seq, id, event_id, event_type, member_id, member_email, status, attempts, last_error,
  reason, kit_requests, steps, next_attempt_at, created_at, updated_at`)

export class DeliveryReadStore implements DeliveryReads {
  constructor(private readonly run: SqlRunner) {}

  list(communityId: string, filter: DeliveryReadFilter): Promise<DeliveryRecord[]> {
    const where: SQL[] = [sql`community_id = ${communityId}`]
    if (filter.statuses) where.push(this.run.anyOf(sql`status`, filter.statuses))
    // Not LIKE: the owner's text is matched literally, `%` and `_` included.
    if (filter.memberEmailContains) where.push(this.run.contains(sql`lower(member_email)`, filter.memberEmailContains.toLowerCase()))
    if (filter.afterSeq !== undefined) where.push(sql`seq > ${filter.afterSeq}`)
    if (filter.beforeSeq !== undefined) where.push(sql`seq < ${filter.beforeSeq}`)
    return this.run.all<DeliveryRecord>(
      sql`SELECT ${COLUMNS} FROM deliveries WHERE ${sql.join(where, sql` AND `)}
           ORDER BY seq ${sql.raw(filter.order === 'oldest' ? 'ASC' : 'DESC')} LIMIT ${filter.limit}`,
    )
  }

  async get(communityId: string, deliveryId: string): Promise<DeliveryRecord | undefined> {
    const [row] = await this.run.all<DeliveryRecord>(
      sql`SELECT ${COLUMNS} FROM deliveries WHERE community_id = ${communityId} AND id = ${deliveryId}`,
    )
    return row
  }

  async skippedSummary(
    communityId: string,
    reason: ReasonCode,
  ): Promise<{ types: { event_type: string; count: number }[]; members: number }> {
    const matching = sql`FROM deliveries WHERE community_id = ${communityId} AND status = 'skipped' AND reason = ${reason}`
    // Byte order for ties, in both dialects.
    const types = await this.run.all<{ event_type: string; count: number }>(
      sql`SELECT event_type, count(*) AS count ${matching} GROUP BY event_type ORDER BY count DESC, event_type ${this.run.byteOrder}`,
    )
    const [row] = await this.run.all<{ members: number }>(sql`SELECT count(DISTINCT member_id) AS members ${matching}`)
    return { types, members: row?.members ?? 0 }
  }
}
