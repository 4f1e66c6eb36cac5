/**
 * The mapping history (table `mapping_versions`), written once for both dialects. An owner's save
 * is one transaction of three statements: the `mappings` row changes only while it still holds the
 * document the owner's change was made to; version 0 (what was in place) is recorded on the first
 * save; and the new version takes the next number. Both inserts run only when the `mappings` row
 * now holds this very save (its document and time), so a save that lost a race to another writer
 * records nothing and is tried again by the service. On PostgreSQL the row's lock orders concurrent
 * saves of one community: the second waits, finds the document changed and writes nothing.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { MappingHistoryRepository, MappingSave, MappingVersionRecord, MappingVersionSummary } from '../../core/storage.ts'
import type { SqlRunner } from './sql.ts'
import { iso } from './values.ts'

const SUMMARY = sql.raw(
  `community_id AS "communityId", version, saved_by AS "savedBy", saved_at AS "savedAt", change, restored_from AS "restoredFrom"`,
)

const COLUMNS = sql.raw('community_id, version, document, saved_by, saved_at, change, restored_from')

interface VersionRow extends MappingVersionSummary {
  document?: string
}

/** PostgreSQL reads a parameter in a SELECT list as text: numbers are cast to their column's type. */
const bigint = (value: number) => sql`CAST(${value} AS bigint)`
const integer = (value: number | null) => sql`CAST(${value} AS integer)`

const toRecord = <R extends VersionRow>(row: R): R => ({
  ...row,
  version: Number(row.version),
  savedAt: Number(row.savedAt),
  restoredFrom: row.restoredFrom === null ? null : Number(row.restoredFrom),
})

export class MappingHistoryStore implements MappingHistoryRepository {
  constructor(private readonly run: SqlRunner) {}

  async save(save: MappingSave): Promise<number | null> {
    const { communityId, document, expected, baseline } = save
    const updatedAt = iso(save.savedAt)
    const write: SQL =
      expected === null
        ? sql`INSERT INTO mappings (community_id, document, updated_at) VALUES (${communityId}, ${document}, ${updatedAt})
              ON CONFLICT (community_id) DO NOTHING`
        : sql`UPDATE mappings SET document = ${document}, updated_at = ${updatedAt}
               WHERE community_id = ${communityId} AND document = ${expected}`
    const written = sql`EXISTS (SELECT 1 FROM mappings WHERE community_id = ${communityId} AND document = ${document} AND updated_at = ${updatedAt})`
    const [, , recorded] = await this.run.batch([
      write,
      sql`INSERT INTO mapping_versions (${COLUMNS})
          SELECT ${communityId}, 0, ${baseline.document}, NULL, ${bigint(baseline.savedAt)}, ${baseline.change}, NULL
           WHERE ${written} AND NOT EXISTS (SELECT 1 FROM mapping_versions WHERE community_id = ${communityId})`,
      sql`INSERT INTO mapping_versions (${COLUMNS})
          SELECT ${communityId}, (SELECT COALESCE(MAX(version), -1) + 1 FROM mapping_versions WHERE community_id = ${communityId}),
                 ${document}, ${save.savedBy}, ${bigint(save.savedAt)}, ${save.change}, ${integer(save.restoredFrom)}
           WHERE ${written}
          RETURNING version`,
    ])
    const row = recorded?.rows[0] as { version: number } | undefined
    return row ? Number(row.version) : null
  }

  async list(communityId: string, page: { beforeVersion?: number; limit: number }): Promise<MappingVersionSummary[]> {
    const before = page.beforeVersion === undefined ? sql`` : sql`AND version < ${page.beforeVersion}`
    const rows = await this.run.all<MappingVersionSummary>(
      sql`SELECT ${SUMMARY} FROM mapping_versions WHERE community_id = ${communityId} ${before} ORDER BY version DESC LIMIT ${page.limit}`,
    )
    return rows.map(toRecord)
  }

  async get(communityId: string, version: number): Promise<MappingVersionRecord | undefined> {
    const [row] = await this.run.all<MappingVersionRecord>(
      sql`SELECT ${SUMMARY}, document FROM mapping_versions WHERE community_id = ${communityId} AND version = ${version}`,
    )
    return row ? toRecord(row) : undefined
  }

  /**
   * A community's version numbers have no gaps above the oldest kept (each save takes the next one,
   * and only versions below the newest `keep` are ever deleted): so at or below the highest minus
   * `keep` lie exactly the versions that have `keep` newer ones.
   */
  purge(before: number, keep: number, limit: number): Promise<number> {
    return this.run.run(
      sql`DELETE FROM mapping_versions WHERE (community_id, version) IN (
            SELECT v.community_id, v.version FROM mapping_versions v
             WHERE v.saved_at < ${before}
               AND v.version <= (SELECT MAX(n.version) FROM mapping_versions n WHERE n.community_id = v.community_id) - ${keep}
             LIMIT ${limit})`,
    )
  }
}
