/** The "Delete by hand in Kit" list, as `../schema/erasures.ts` declares it for SQLite. */
import { bigint, index, pgTable, primaryKey, text } from 'drizzle-orm/pg-core'

const ms = (name: string) => bigint(name, { mode: 'number' })

export const kitErasures = pgTable(
  'kit_erasures',
  {
    communityId: text('community_id').notNull(),
    memberId: text('member_id').notNull(),
    subscriberId: bigint('subscriber_id', { mode: 'number' }).notNull(),
    erasedAt: ms('erased_at').notNull(),
    doneAt: ms('done_at'),
  },
  (t) => [
    primaryKey({ name: 'kit_erasures_pk', columns: [t.communityId, t.memberId, t.subscriberId] }),
    index('kit_erasures_community_idx').on(t.communityId, t.erasedAt),
  ],
)
