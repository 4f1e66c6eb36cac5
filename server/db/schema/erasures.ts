import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/**
 * Members erased from Kit as far as its API allows (Kit's v4 API cannot delete a subscriber), for
 * the owner to delete by hand in Kit's app: the member, Kit's subscriber id (the link to their page
 * is built from it), when the erasure succeeded, and when the owner said it was done (epoch ms).
 * No email or name is stored.
 */
export const kitErasures = sqliteTable(
  'kit_erasures',
  {
    communityId: text('community_id').notNull(),
    memberId: text('member_id').notNull(),
    subscriberId: integer('subscriber_id').notNull(),
    erasedAt: integer('erased_at').notNull(),
    doneAt: integer('done_at'),
  },
  (t) => [
    primaryKey({ name: 'kit_erasures_pk', columns: [t.communityId, t.memberId, t.subscriberId] }),
    index('kit_erasures_community_idx').on(t.communityId, t.erasedAt),
  ],
)
