/** A community's settings, as `../schema/settings.ts` declares them for SQLite. */
import { bigint, pgTable, text } from 'drizzle-orm/pg-core'

export const communitySettings = pgTable('community_settings', {
  communityId: text('community_id').primaryKey(),
  consentMode: text('consent_mode').notNull().default('all_members'),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
})
