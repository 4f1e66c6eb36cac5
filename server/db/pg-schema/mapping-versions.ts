/** Every owner's save of a community's mapping document, as `../schema/mapping-versions.ts` declares it for SQLite. */
import { bigint, index, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core'

export const mappingVersions = pgTable(
  'mapping_versions',
  {
    communityId: text('community_id').notNull(),
    version: integer('version').notNull(),
    document: text('document').notNull(),
    savedBy: text('saved_by'),
    savedAt: bigint('saved_at', { mode: 'number' }).notNull(),
    change: text('change').notNull(),
    restoredFrom: integer('restored_from'),
  },
  (t) => [
    primaryKey({ name: 'mapping_versions_pk', columns: [t.communityId, t.version] }),
    index('mapping_versions_saved_idx').on(t.savedAt),
  ],
)
