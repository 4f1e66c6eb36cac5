/**
 * The "Delete by hand in Kit" list (table kit_erasures), written once for both dialects: members
 * erased from Kit as far as its API allows, by member and Kit subscriber id, until the owner says
 * they deleted them in Kit's app. No email or name is stored.
 */
import { sql } from 'drizzle-orm'
import type { ErasureRecord, ErasureRepository } from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'

const COLUMNS = sql.raw(
  `community_id AS "communityId", member_id AS "memberId", subscriber_id AS "subscriberId", erased_at AS "erasedAt", done_at AS "doneAt"`,
)

const toRecord = (row: ErasureRecord): ErasureRecord => ({
  ...row,
  subscriberId: Number(row.subscriberId),
  erasedAt: Number(row.erasedAt),
  doneAt: row.doneAt === null ? null : Number(row.doneAt),
})

export class ErasureStore implements ErasureRepository {
  constructor(private readonly run: SqlRunner) {}

  async record(communityId: string, memberId: string, subscriberId: number, now: number): Promise<void> {
    await this.run.run(
      sql`INSERT INTO kit_erasures (community_id, member_id, subscriber_id, erased_at, done_at)
          VALUES (${communityId}, ${memberId}, ${subscriberId}, ${now}, NULL)
          ON CONFLICT (community_id, member_id, subscriber_id) DO UPDATE SET erased_at = excluded.erased_at, done_at = NULL`,
    )
  }

  async pending(communityId: string, limit: number): Promise<ErasureRecord[]> {
    const rows = await this.run.all<ErasureRecord>(
      sql`SELECT ${COLUMNS} FROM kit_erasures WHERE community_id = ${communityId} AND done_at IS NULL
           ORDER BY erased_at DESC, member_id, subscriber_id LIMIT ${limit}`,
    )
    return rows.map(toRecord)
  }

  done(communityId: string, memberId: string, now: number): Promise<number> {
    return this.run.run(
      sql`UPDATE kit_erasures SET done_at = ${now} WHERE community_id = ${communityId} AND member_id = ${memberId} AND done_at IS NULL`,
    )
  }

  purgeDone(before: number): Promise<number> {
    return this.run.run(sql`DELETE FROM kit_erasures WHERE done_at IS NOT NULL AND done_at < ${before}`)
  }
}
