/** What the plugin last saw of members' Kit side, the poll's rows and the Kit webhooks, as `../schema/kit-watch.ts` declares them for SQLite. */
import { bigint, index, pgTable, primaryKey, text } from 'drizzle-orm/pg-core'

const ms = (name: string) => bigint(name, { mode: 'number' })

export const kitMemberStates = pgTable(
  'kit_member_states',
  {
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    memberId: text('member_id').notNull(),
    subscriberId: bigint('subscriber_id', { mode: 'number' }).notNull(),
    state: text('state').notNull(),
    stateLearnedAt: ms('state_learned_at').notNull(),
    firstName: text('first_name'),
    email: text('email').notNull(),
    updatedAt: ms('updated_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'kit_member_states_pk', columns: [t.communityId, t.credentialId, t.memberId] }),
    index('kit_member_states_subscriber_idx').on(t.communityId, t.credentialId, t.subscriberId),
  ],
)

export const kitWatchPolls = pgTable('kit_watch_polls', {
  communityId: text('community_id').primaryKey(),
  credentialId: text('credential_id').notNull(),
  nextPollAt: ms('next_poll_at').notNull(),
  polledFrom: ms('polled_from'),
})

export const kitWebhooks = pgTable(
  'kit_webhooks',
  {
    token: text('token').primaryKey(),
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    event: text('event').notNull(),
    kitWebhookId: bigint('kit_webhook_id', { mode: 'number' }),
    createdAt: ms('created_at').notNull(),
  },
  (t) => [index('kit_webhooks_community_idx').on(t.communityId)],
)
