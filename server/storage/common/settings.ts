/**
 * A community's settings (table community_settings), written once for both dialects. Every query
 * names the community; the row is read by its primary key, so reading it on each delivery costs
 * one indexed lookup and is never stale on any instance sharing the database.
 */
import { sql } from 'drizzle-orm'
import type { CommunitySettingsRecord, CommunitySettingsRepository } from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'

export class CommunitySettingsStore implements CommunitySettingsRepository {
  constructor(private readonly run: SqlRunner) {}

  async get(communityId: string): Promise<CommunitySettingsRecord | undefined> {
    const [row] = await this.run.all<CommunitySettingsRecord>(
      sql`SELECT consent_mode AS "consentMode", updated_at AS "updatedAt" FROM community_settings WHERE community_id = ${communityId}`,
    )
    return row ? { consentMode: row.consentMode, updatedAt: Number(row.updatedAt) } : undefined
  }

  async saveConsentMode(communityId: string, consentMode: string, now: number): Promise<void> {
    await this.run.run(
      sql`INSERT INTO community_settings (community_id, consent_mode, updated_at) VALUES (${communityId}, ${consentMode}, ${now})
          ON CONFLICT (community_id) DO UPDATE SET consent_mode = excluded.consent_mode, updated_at = excluded.updated_at`,
    )
  }
}
