/** The owner's Activity reads of deliveries, from the shared database. */
import type pg from 'pg'
import type { ReasonCode } from '../../core/reasons.ts'
import type { DeliveryReadFilter, DeliveryReads, DeliveryRecord } from '../../core/storage.ts'

const COLUMNS = `seq, id, event_id, event_type, member_id, member_email, status, attempts, last_error,
  reason, kit_requests, steps, next_attempt_at, created_at, updated_at`

type Row = Omit<DeliveryRecord, 'seq' | 'attempts' | 'kit_requests' | 'next_attempt_at'> & {
  seq: string
  attempts: string
  kit_requests: string
  next_attempt_at: string
}

/** bigint columns arrive as strings from `pg`. */
const toRecord = (r: Row): DeliveryRecord => ({
  ...r,
  seq: Number(r.seq),
  attempts: Number(r.attempts),
  kit_requests: Number(r.kit_requests),
  next_attempt_at: Number(r.next_attempt_at),
})

export class PgDeliveryReads implements DeliveryReads {
  constructor(private readonly pool: pg.Pool) {}

  async list(communityId: string, filter: DeliveryReadFilter): Promise<DeliveryRecord[]> {
    const params: unknown[] = [communityId]
    const where = ['community_id = $1']
    const param = (value: unknown) => `$${params.push(value)}`
    if (filter.statuses) where.push(`status = ANY(${param(filter.statuses)}::text[])`)
    // strpos, not LIKE: the owner's text is matched literally, `%` and `_` included.
    if (filter.memberEmailContains) where.push(`strpos(lower(member_email), ${param(filter.memberEmailContains.toLowerCase())}) > 0`)
    if (filter.afterSeq !== undefined) where.push(`seq > ${param(filter.afterSeq)}`)
    if (filter.beforeSeq !== undefined) where.push(`seq < ${param(filter.beforeSeq)}`)
    const { rows } = await this.pool.query<Row>(
      `SELECT ${COLUMNS} FROM deliveries WHERE ${where.join(' AND ')}
        ORDER BY seq ${filter.order === 'oldest' ? 'ASC' : 'DESC'} LIMIT ${param(filter.limit)}`,
      params,
    )
    return rows.map(toRecord)
  }

  async get(communityId: string, deliveryId: string): Promise<DeliveryRecord | undefined> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLUMNS} FROM deliveries WHERE community_id = $1 AND id = $2`, [communityId, deliveryId])
    const row = rows[0]
    return row ? toRecord(row) : undefined
  }

  async skippedSummary(communityId: string, reason: ReasonCode): Promise<{ types: { event_type: string; count: number }[]; members: number }> {
    const params = [communityId, reason]
    const matching = `FROM deliveries WHERE community_id = $1 AND status = 'skipped' AND reason = $2`
    // Byte order for ties, as the embedded database sorts.
    const types = await this.pool.query<{ event_type: string; count: number }>(
      `SELECT event_type, count(*)::int AS count ${matching} GROUP BY event_type ORDER BY count DESC, event_type COLLATE "C"`,
      params,
    )
    const members = await this.pool.query<{ members: number }>(`SELECT count(DISTINCT member_id)::int AS members ${matching}`, params)
    return { types: types.rows, members: members.rows[0]?.members ?? 0 }
  }
}
