/** The shared dialect's Kit watch tables, as `../sqlite/kit-states.ts` keeps them; the poll's claim is one conditional upsert, so one instance polls per interval. */
import type pg from 'pg'
import { toKnown } from '../sqlite/kit-states.ts'
import type { KitMemberState, KitStateRepository, KitWebhookRecord, KnownKitMember } from '../../core/storage.ts'

const WEBHOOK_COLUMNS = `token, community_id AS "communityId", credential_id AS "credentialId", event, kit_webhook_id AS "kitWebhookId", created_at AS "createdAt"`

const toWebhook = (row: Record<string, unknown>): KitWebhookRecord => ({
  ...(row as unknown as KitWebhookRecord),
  kitWebhookId: row.kitWebhookId === null ? null : Number(row.kitWebhookId),
  createdAt: Number(row.createdAt),
})

export class PostgresKitStates implements KitStateRepository {
  constructor(private readonly pool: pg.Pool) {}

  async known(communityId: string, credentialId: string, subscribers: { id: number; email: string }[]): Promise<KnownKitMember[]> {
    if (subscribers.length === 0) return []
    const { rows } = await this.pool.query(
      `SELECT k.member_id AS "memberId", k.subscriber_id AS "subscriberId", k.email AS "writtenEmail", k.first_name AS "writtenFirstName",
              s.subscriber_id AS "seenSubscriberId", s.state, s.state_learned_at AS "stateLearnedAt", s.first_name AS "seenFirstName", s.email AS "seenEmail"
         FROM kit_subscribers k
         LEFT JOIN kit_member_states s
           ON s.community_id = k.community_id AND s.credential_id = k.credential_id AND s.member_id = k.member_id
        WHERE k.community_id = $1 AND k.credential_id = $2
          AND (k.subscriber_id = ANY($3::bigint[]) OR lower(k.email) = ANY($4::text[]))`,
      [communityId, credentialId, subscribers.map((s) => s.id), subscribers.map((s) => s.email.toLowerCase())],
    )
    return rows.map(toKnown)
  }

  async record(communityId: string, credentialId: string, memberId: string, state: KitMemberState, now: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO kit_member_states (community_id, credential_id, member_id, subscriber_id, state, state_learned_at, first_name, email, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (community_id, credential_id, member_id) DO UPDATE SET subscriber_id = excluded.subscriber_id, state = excluded.state,
         state_learned_at = excluded.state_learned_at, first_name = excluded.first_name, email = excluded.email, updated_at = excluded.updated_at`,
      [communityId, credentialId, memberId, state.subscriberId, state.state, state.stateLearnedAt, state.firstName, state.email, now],
    )
  }

  async claimPoll(
    communityId: string,
    credentialId: string,
    now: number,
    intervalMs: number,
  ): Promise<{ polledFrom: number } | { dueAt: number }> {
    const next = now + intervalMs
    const fresh = await this.pool.query(
      `INSERT INTO kit_watch_polls (community_id, credential_id, next_poll_at, polled_from) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [communityId, credentialId, next, now],
    )
    if (fresh.rowCount === 1) return { dueAt: next }
    const rekeyed = await this.pool.query(
      `UPDATE kit_watch_polls SET credential_id = $1, next_poll_at = $2, polled_from = $3 WHERE community_id = $4 AND credential_id <> $1`,
      [credentialId, next, now, communityId],
    )
    if (rekeyed.rowCount === 1) return { dueAt: next }
    const { rows } = await this.pool.query<{ polledFrom: string }>(
      `UPDATE kit_watch_polls SET next_poll_at = $1 WHERE community_id = $2 AND next_poll_at <= $3 RETURNING polled_from AS "polledFrom"`,
      [next, communityId, now],
    )
    if (rows[0]) return { polledFrom: Number(rows[0].polledFrom) }
    const due = await this.pool.query<{ dueAt: string }>(`SELECT next_poll_at AS "dueAt" FROM kit_watch_polls WHERE community_id = $1`, [
      communityId,
    ])
    return { dueAt: due.rows[0] ? Number(due.rows[0].dueAt) : now }
  }

  async pollDone(communityId: string, from: number): Promise<void> {
    await this.pool.query(`UPDATE kit_watch_polls SET polled_from = $1 WHERE community_id = $2`, [from, communityId])
  }

  async saveWebhook(record: KitWebhookRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO kit_webhooks (token, community_id, credential_id, event, kit_webhook_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (token) DO UPDATE SET kit_webhook_id = excluded.kit_webhook_id`,
      [record.token, record.communityId, record.credentialId, record.event, record.kitWebhookId, record.createdAt],
    )
  }

  async webhookByToken(token: string): Promise<KitWebhookRecord | undefined> {
    const { rows } = await this.pool.query<Record<string, unknown>>(`SELECT ${WEBHOOK_COLUMNS} FROM kit_webhooks WHERE token = $1`, [token])
    return rows[0] ? toWebhook(rows[0]) : undefined
  }

  async webhooks(communityId: string): Promise<KitWebhookRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT ${WEBHOOK_COLUMNS} FROM kit_webhooks WHERE community_id = $1 ORDER BY created_at, token`,
      [communityId],
    )
    return rows.map(toWebhook)
  }

  async forgetConnection(communityId: string): Promise<void> {
    await this.pool.query(`DELETE FROM kit_webhooks WHERE community_id = $1`, [communityId])
    await this.pool.query(`DELETE FROM kit_watch_polls WHERE community_id = $1`, [communityId])
  }

  async forgetWebhook(token: string): Promise<void> {
    await this.pool.query(`DELETE FROM kit_webhooks WHERE token = $1`, [token])
  }

  async forgetMember(communityId: string, memberId: string): Promise<void> {
    await this.pool.query(`DELETE FROM kit_member_states WHERE community_id = $1 AND member_id = $2`, [communityId, memberId])
  }
}
