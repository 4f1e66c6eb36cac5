/**
 * `oauth_states` and `oauth_installs`, written once for both dialects: authorizations started from
 * the panel and installs begun in Kit's App Store, each used once. A row is claimed by setting
 * `used_at` where it is still null, so two callbacks with the same state (two instances, a
 * reloaded page) never both get it.
 */
import { sql } from 'drizzle-orm'
import type { OAuthInstallRecord, OAuthStateRecord, OAuthStateRepository } from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'

const STATE_COLUMNS = sql.raw(
  'state_hash AS "stateHash", community_id AS "communityId", session_sub AS "sessionSub", verifier_ciphertext AS "verifierCiphertext", return_to AS "returnTo", created_at AS "createdAt", expires_at AS "expiresAt", used_at AS "usedAt"',
)
const INSTALL_COLUMNS = sql.raw(
  'code_hash AS "codeHash", return_to AS "returnTo", created_at AS "createdAt", expires_at AS "expiresAt", used_at AS "usedAt"',
)

export class OAuthStateStore implements OAuthStateRepository {
  constructor(private readonly run: SqlRunner) {}

  async start(record: OAuthStateRecord): Promise<void> {
    await this.run.batch([
      sql`DELETE FROM oauth_states WHERE community_id = ${record.communityId} AND session_sub = ${record.sessionSub} AND used_at IS NULL`,
      sql`INSERT INTO oauth_states (state_hash, community_id, session_sub, verifier_ciphertext, return_to, created_at, expires_at, used_at)
          VALUES (${record.stateHash}, ${record.communityId}, ${record.sessionSub}, ${record.verifierCiphertext}, ${record.returnTo},
                  ${record.createdAt}, ${record.expiresAt}, NULL)`,
    ])
  }

  async use(stateHash: string, now: number): Promise<{ state: OAuthStateRecord } | { refused: 'unknown' | 'used' | 'expired' }> {
    const claimed = await this.run.run(
      sql`UPDATE oauth_states SET used_at = ${now} WHERE state_hash = ${stateHash} AND used_at IS NULL AND expires_at > ${now}`,
    )
    const [row] = await this.run.all<OAuthStateRecord>(sql`SELECT ${STATE_COLUMNS} FROM oauth_states WHERE state_hash = ${stateHash}`)
    if (!row) return { refused: 'unknown' }
    if (claimed > 0) return { state: row }
    return { refused: row.usedAt !== null ? 'used' : 'expired' }
  }

  async saveInstall(record: OAuthInstallRecord): Promise<void> {
    await this.run.run(sql`INSERT INTO oauth_installs (code_hash, return_to, created_at, expires_at, used_at)
      VALUES (${record.codeHash}, ${record.returnTo}, ${record.createdAt}, ${record.expiresAt}, NULL)`)
  }

  async useInstall(codeHash: string, now: number): Promise<OAuthInstallRecord | null> {
    const claimed = await this.run.run(
      sql`UPDATE oauth_installs SET used_at = ${now} WHERE code_hash = ${codeHash} AND used_at IS NULL AND expires_at > ${now}`,
    )
    if (claimed === 0) return null
    const [row] = await this.run.all<OAuthInstallRecord>(sql`SELECT ${INSTALL_COLUMNS} FROM oauth_installs WHERE code_hash = ${codeHash}`)
    return row ?? null
  }

  async purge(before: number): Promise<number> {
    const [states, installs] = await this.run.batch([
      sql`DELETE FROM oauth_states WHERE expires_at < ${before}`,
      sql`DELETE FROM oauth_installs WHERE expires_at < ${before}`,
    ])
    return (states?.changes ?? 0) + (installs?.changes ?? 0)
  }
}
