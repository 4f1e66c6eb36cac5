import { sqliteTable, text, index } from 'drizzle-orm/sqlite-core'

/** One Kit credential per community. The key is stored only as AES-256-GCM ciphertext. */
export const connections = sqliteTable(
  'connections',
  {
    communityId: text('community_id').primaryKey(),
    apiKeyCiphertext: text('api_key_ciphertext').notNull(),
    keyHint: text('key_hint').notNull(),
    status: text('status', { enum: ['connected', 'invalid'] }).notNull(),
    accountJson: text('account_json'),
    credentialId: text('credential_id').notNull(),
    createdAt: text('created_at').notNull(),
    updatedAt: text('updated_at').notNull(),
  },
  (t) => [index('connections_credential_idx').on(t.credentialId)],
)

export type ConnectionRow = typeof connections.$inferSelect
