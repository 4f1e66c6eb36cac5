/**
 * The Kit watch tables, written once for both dialects: what was last seen of members in Kit, the
 * poll's rows, the Kit webhooks. The poll's claim is one conditional update, so one instance polls
 * per interval even when several share the database.
 */
import { sql } from 'drizzle-orm'
import type { KitMemberState, KitStateRepository, KitWebhookRecord, KnownKitMember } from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'

/** Subscribers looked up per statement (both dialects' bound-parameter limits are far above). */
const CHUNK = 400

interface KnownRow {
  memberId: string
  subscriberId: number
  writtenEmail: string
  writtenFirstName: string | null
  seenSubscriberId: number | null
  state: string | null
  stateLearnedAt: number | null
  seenFirstName: string | null
  seenEmail: string | null
}

function toKnown(row: KnownRow): KnownKitMember {
  const seen: KitMemberState | null =
    row.state === null
      ? null
      : {
          subscriberId: Number(row.seenSubscriberId),
          state: row.state,
          stateLearnedAt: Number(row.stateLearnedAt),
          firstName: row.seenFirstName,
          email: String(row.seenEmail),
        }
  return {
    memberId: row.memberId,
    subscriberId: Number(row.subscriberId),
    writtenEmail: row.writtenEmail,
    writtenFirstName: row.writtenFirstName,
    seen,
  }
}

const WEBHOOK_COLUMNS = sql.raw(
  `token, community_id AS "communityId", credential_id AS "credentialId", event, kit_webhook_id AS "kitWebhookId", created_at AS "createdAt"`,
)

const inList = (values: readonly (string | number)[]) =>
  sql`(${sql.join(
    values.map((value) => sql`${value}`),
    sql`, `,
  )})`

export class KitStateStore implements KitStateRepository {
  constructor(private readonly run: SqlRunner) {}

  async known(communityId: string, credentialId: string, subscribers: { id: number; email: string }[]): Promise<KnownKitMember[]> {
    const found = new Map<string, KnownKitMember>()
    for (let i = 0; i < subscribers.length; i += CHUNK) {
      const chunk = subscribers.slice(i, i + CHUNK)
      const rows = await this.run.all<KnownRow>(
        sql`SELECT k.member_id AS "memberId", k.subscriber_id AS "subscriberId", k.email AS "writtenEmail", k.first_name AS "writtenFirstName",
                   s.subscriber_id AS "seenSubscriberId", s.state, s.state_learned_at AS "stateLearnedAt", s.first_name AS "seenFirstName", s.email AS "seenEmail"
              FROM kit_subscribers k
              LEFT JOIN kit_member_states s
                ON s.community_id = k.community_id AND s.credential_id = k.credential_id AND s.member_id = k.member_id
             WHERE k.community_id = ${communityId} AND k.credential_id = ${credentialId}
               AND (k.subscriber_id IN ${inList(chunk.map((s) => s.id))} OR lower(k.email) IN ${inList(chunk.map((s) => s.email.toLowerCase()))})`,
      )
      for (const row of rows) found.set(row.memberId, toKnown(row))
    }
    return [...found.values()]
  }

  async seen(communityId: string, credentialId: string, memberId: string): Promise<KitMemberState | null> {
    const [row] = await this.run.all<{
      subscriberId: number
      state: string
      stateLearnedAt: number
      firstName: string | null
      email: string
    }>(
      sql`SELECT subscriber_id AS "subscriberId", state, state_learned_at AS "stateLearnedAt", first_name AS "firstName", email
            FROM kit_member_states WHERE community_id = ${communityId} AND credential_id = ${credentialId} AND member_id = ${memberId}`,
    )
    if (!row) return null
    return { ...row, subscriberId: Number(row.subscriberId), stateLearnedAt: Number(row.stateLearnedAt) }
  }

  async record(communityId: string, credentialId: string, memberId: string, state: KitMemberState, now: number): Promise<void> {
    await this.run.run(
      sql`INSERT INTO kit_member_states (community_id, credential_id, member_id, subscriber_id, state, state_learned_at, first_name, email, updated_at)
          VALUES (${communityId}, ${credentialId}, ${memberId}, ${state.subscriberId}, ${state.state}, ${state.stateLearnedAt}, ${state.firstName}, ${state.email}, ${now})
          ON CONFLICT (community_id, credential_id, member_id) DO UPDATE SET subscriber_id = excluded.subscriber_id, state = excluded.state,
            state_learned_at = excluded.state_learned_at, first_name = excluded.first_name, email = excluded.email, updated_at = excluded.updated_at`,
    )
  }

  async claimPoll(
    communityId: string,
    credentialId: string,
    now: number,
    intervalMs: number,
  ): Promise<{ polledFrom: number } | { dueAt: number }> {
    const next = now + intervalMs
    const fresh = await this.run.run(
      sql`INSERT INTO kit_watch_polls (community_id, credential_id, next_poll_at, polled_from)
          VALUES (${communityId}, ${credentialId}, ${next}, ${now}) ON CONFLICT DO NOTHING`,
    )
    if (fresh === 1) return { dueAt: next }
    const rekeyed = await this.run.run(
      sql`UPDATE kit_watch_polls SET credential_id = ${credentialId}, next_poll_at = ${next}, polled_from = ${now}
           WHERE community_id = ${communityId} AND credential_id <> ${credentialId}`,
    )
    if (rekeyed === 1) return { dueAt: next }
    const [claimed] = await this.run.all<{ polledFrom: number }>(
      sql`UPDATE kit_watch_polls SET next_poll_at = ${next} WHERE community_id = ${communityId} AND next_poll_at <= ${now}
          RETURNING polled_from AS "polledFrom"`,
    )
    if (claimed) return { polledFrom: Number(claimed.polledFrom) }
    const [due] = await this.run.all<{ dueAt: number }>(
      sql`SELECT next_poll_at AS "dueAt" FROM kit_watch_polls WHERE community_id = ${communityId}`,
    )
    return { dueAt: due ? Number(due.dueAt) : now }
  }

  async pollDone(communityId: string, from: number): Promise<void> {
    await this.run.run(sql`UPDATE kit_watch_polls SET polled_from = ${from} WHERE community_id = ${communityId}`)
  }

  async saveWebhook(record: KitWebhookRecord): Promise<void> {
    await this.run.run(
      sql`INSERT INTO kit_webhooks (token, community_id, credential_id, event, kit_webhook_id, created_at)
          VALUES (${record.token}, ${record.communityId}, ${record.credentialId}, ${record.event}, ${record.kitWebhookId}, ${record.createdAt})
          ON CONFLICT (token) DO UPDATE SET kit_webhook_id = excluded.kit_webhook_id`,
    )
  }

  async webhookByToken(token: string): Promise<KitWebhookRecord | undefined> {
    const [row] = await this.run.all<KitWebhookRecord>(sql`SELECT ${WEBHOOK_COLUMNS} FROM kit_webhooks WHERE token = ${token}`)
    return row
  }

  async webhooks(communityId: string): Promise<KitWebhookRecord[]> {
    return this.run.all<KitWebhookRecord>(
      sql`SELECT ${WEBHOOK_COLUMNS} FROM kit_webhooks WHERE community_id = ${communityId} ORDER BY created_at, token`,
    )
  }

  async forgetConnection(communityId: string): Promise<void> {
    await this.run.batch([
      sql`DELETE FROM kit_webhooks WHERE community_id = ${communityId}`,
      sql`DELETE FROM kit_watch_polls WHERE community_id = ${communityId}`,
    ])
  }

  async forgetWebhook(token: string): Promise<void> {
    await this.run.run(sql`DELETE FROM kit_webhooks WHERE token = ${token}`)
  }

  async forgetMember(communityId: string, memberId: string): Promise<void> {
    await this.run.run(sql`DELETE FROM kit_member_states WHERE community_id = ${communityId} AND member_id = ${memberId}`)
  }
}
