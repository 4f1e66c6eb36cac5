import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/**
 * What the plugin last saw of each member's Kit side (the poll, webhooks and answers compare with
 * it): Kit's `state` (a code), when the plugin learnt that state, and Kit's first name and email as
 * last seen. The member ↔ subscriber link and what the plugin last wrote live in `kit_subscribers`.
 */
export const kitMemberStates = sqliteTable(
  'kit_member_states',
  {
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    memberId: text('member_id').notNull(),
    subscriberId: integer('subscriber_id').notNull(),
    state: text('state').notNull(),
    stateLearnedAt: integer('state_learned_at').notNull(),
    firstName: text('first_name'),
    email: text('email').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'kit_member_states_pk', columns: [t.communityId, t.credentialId, t.memberId] }),
    index('kit_member_states_subscriber_idx').on(t.communityId, t.credentialId, t.subscriberId),
  ],
)

/**
 * One row per connection the poll watches: when it is next due (claimed by moving it, so one
 * instance polls per interval) and from when the last complete poll looked (epoch ms).
 */
export const kitWatchPolls = sqliteTable('kit_watch_polls', {
  communityId: text('community_id').primaryKey(),
  credentialId: text('credential_id').notNull(),
  nextPollAt: integer('next_poll_at').notNull(),
  polledFrom: integer('polled_from'),
})

/** Kit webhooks registered for a connection: each with its own unguessable token in the target path. */
export const kitWebhooks = sqliteTable(
  'kit_webhooks',
  {
    token: text('token').primaryKey(),
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    event: text('event').notNull(),
    kitWebhookId: integer('kit_webhook_id'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('kit_webhooks_community_idx').on(t.communityId)],
)
