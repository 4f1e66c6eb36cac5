import { sqliteTable, text } from 'drizzle-orm/sqlite-core'

/** A community's saved mapping document (`Mappings` in the settings API); absent means the defaults. */
export const mappings = sqliteTable('mappings', {
  communityId: text('community_id').primaryKey(),
  document: text('document').notNull(),
  updatedAt: text('updated_at').notNull(),
})
