import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/**
 * A community's settings that are not a document of their own: `consent_mode` (a code, see
 * `ConsentMode` in shared/api.ts) says who may become a Kit subscriber. No row: the defaults.
 */
export const communitySettings = sqliteTable('community_settings', {
  communityId: text('community_id').primaryKey(),
  consentMode: text('consent_mode').notNull().default('all_members'),
  updatedAt: integer('updated_at').notNull(),
})
