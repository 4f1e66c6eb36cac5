/** The embedded dialect's Kit watch tables: what was last seen of members in Kit, the poll's rows, the Kit webhooks. */
import type Database from 'better-sqlite3'
import type { KitMemberState, KitStateRepository, KitWebhookRecord, KnownKitMember } from '../../core/storage.ts'

/** Subscribers looked up per statement (SQLite's bound-parameter limit is far above). */
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

export function toKnown(row: KnownRow): KnownKitMember {
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

const WEBHOOK_COLUMNS = `token, community_id AS communityId, credential_id AS credentialId, event, kit_webhook_id AS kitWebhookId, created_at AS createdAt`

export class SqliteKitStates implements KitStateRepository {
  constructor(private readonly sqlite: Database.Database) {}

  async known(communityId: string, credentialId: string, subscribers: { id: number; email: string }[]): Promise<KnownKitMember[]> {
    const found = new Map<string, KnownKitMember>()
    for (let i = 0; i < subscribers.length; i += CHUNK) {
      const chunk = subscribers.slice(i, i + CHUNK)
      const ids = chunk.map((s) => s.id)
      const emails = chunk.map((s) => s.email.toLowerCase())
      const rows = this.sqlite
        .prepare(
          `SELECT k.member_id AS memberId, k.subscriber_id AS subscriberId, k.email AS writtenEmail, k.first_name AS writtenFirstName,
                  s.subscriber_id AS seenSubscriberId, s.state, s.state_learned_at AS stateLearnedAt, s.first_name AS seenFirstName, s.email AS seenEmail
             FROM kit_subscribers k
             LEFT JOIN kit_member_states s
               ON s.community_id = k.community_id AND s.credential_id = k.credential_id AND s.member_id = k.member_id
            WHERE k.community_id = ? AND k.credential_id = ?
              AND (k.subscriber_id IN (${ids.map(() => '?').join(',')}) OR lower(k.email) IN (${emails.map(() => '?').join(',')}))`,
        )
        .all(communityId, credentialId, ...ids, ...emails) as KnownRow[]
      for (const row of rows) found.set(row.memberId, toKnown(row))
    }
    return [...found.values()]
  }

  async record(communityId: string, credentialId: string, memberId: string, state: KitMemberState, now: number): Promise<void> {
    this.sqlite
      .prepare(
        `INSERT INTO kit_member_states (community_id, credential_id, member_id, subscriber_id, state, state_learned_at, first_name, email, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (community_id, credential_id, member_id) DO UPDATE SET subscriber_id = excluded.subscriber_id, state = excluded.state,
           state_learned_at = excluded.state_learned_at, first_name = excluded.first_name, email = excluded.email, updated_at = excluded.updated_at`,
      )
      .run(communityId, credentialId, memberId, state.subscriberId, state.state, state.stateLearnedAt, state.firstName, state.email, now)
  }

  async claimPoll(
    communityId: string,
    credentialId: string,
    now: number,
    intervalMs: number,
  ): Promise<{ polledFrom: number } | { dueAt: number }> {
    const next = now + intervalMs
    const fresh = this.sqlite
      .prepare(
        `INSERT INTO kit_watch_polls (community_id, credential_id, next_poll_at, polled_from) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      )
      .run(communityId, credentialId, next, now)
    if (fresh.changes === 1) return { dueAt: next }
    const rekeyed = this.sqlite
      .prepare(
        `UPDATE kit_watch_polls SET credential_id = ?, next_poll_at = ?, polled_from = ? WHERE community_id = ? AND credential_id <> ?`,
      )
      .run(credentialId, next, now, communityId, credentialId)
    if (rekeyed.changes === 1) return { dueAt: next }
    const row = this.sqlite
      .prepare(
        `UPDATE kit_watch_polls SET next_poll_at = ? WHERE community_id = ? AND next_poll_at <= ? RETURNING polled_from AS polledFrom`,
      )
      .get(next, communityId, now) as { polledFrom: number } | undefined
    if (row) return row
    const due = this.sqlite.prepare(`SELECT next_poll_at AS dueAt FROM kit_watch_polls WHERE community_id = ?`).get(communityId) as
      { dueAt: number } | undefined
    return { dueAt: due?.dueAt ?? now }
  }

  async pollDone(communityId: string, from: number): Promise<void> {
    this.sqlite.prepare(`UPDATE kit_watch_polls SET polled_from = ? WHERE community_id = ?`).run(from, communityId)
  }

  async saveWebhook(record: KitWebhookRecord): Promise<void> {
    this.sqlite
      .prepare(
        `INSERT INTO kit_webhooks (token, community_id, credential_id, event, kit_webhook_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (token) DO UPDATE SET kit_webhook_id = excluded.kit_webhook_id`,
      )
      .run(record.token, record.communityId, record.credentialId, record.event, record.kitWebhookId, record.createdAt)
  }

  async webhookByToken(token: string): Promise<KitWebhookRecord | undefined> {
    return this.sqlite.prepare(`SELECT ${WEBHOOK_COLUMNS} FROM kit_webhooks WHERE token = ?`).get(token) as KitWebhookRecord | undefined
  }

  async webhooks(communityId: string): Promise<KitWebhookRecord[]> {
    return this.sqlite
      .prepare(`SELECT ${WEBHOOK_COLUMNS} FROM kit_webhooks WHERE community_id = ? ORDER BY created_at, token`)
      .all(communityId) as KitWebhookRecord[]
  }

  async forgetConnection(communityId: string): Promise<void> {
    this.sqlite.prepare(`DELETE FROM kit_webhooks WHERE community_id = ?`).run(communityId)
    this.sqlite.prepare(`DELETE FROM kit_watch_polls WHERE community_id = ?`).run(communityId)
  }

  async forgetWebhook(token: string): Promise<void> {
    this.sqlite.prepare(`DELETE FROM kit_webhooks WHERE token = ?`).run(token)
  }

  async forgetMember(communityId: string, memberId: string): Promise<void> {
    this.sqlite.prepare(`DELETE FROM kit_member_states WHERE community_id = ? AND member_id = ?`).run(communityId, memberId)
  }
}
