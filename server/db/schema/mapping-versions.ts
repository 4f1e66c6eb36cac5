import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/**
 * Every owner's save of a community's mapping document, numbered from 0 per community: the document
 * as saved, who saved it (the session token's `sub`; null for version 0, what was in place before
 * the first save), when (epoch ms), the change in words, and the version it restored, if it was a
 * restore. Kept `RETENTION_DAYS` or the newest 100, whichever is more.
 */
export const mappingVersions = sqliteTable(
  'mapping_versions',
  {
    communityId: text('community_id').notNull(),
    version: integer('version').notNull(),
    document: text('document').notNull(),
    savedBy: text('saved_by'),
    savedAt: integer('saved_at').notNull(),
    change: text('change').notNull(),
    restoredFrom: integer('restored_from'),
  },
  (t) => [
    primaryKey({ name: 'mapping_versions_pk', columns: [t.communityId, t.version] }),
    index('mapping_versions_saved_idx').on(t.savedAt),
  ],
)
