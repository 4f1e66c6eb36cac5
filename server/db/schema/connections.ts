import { sqliteTable, text, index, integer } from 'drizzle-orm/sqlite-core'

/**
 * One Kit credential per community, an API key (`kind` api_key) or an OAuth grant (`oauth`).
 * Secrets are stored only as AES-256-GCM ciphertext: `api_key_ciphertext` holds the API key, or
 * the access token of an OAuth grant (a new ciphertext with every refresh, which is how a refresh
 * is told apart); `refresh_token_ciphertext` the grant's refresh token. `token_expires_at` and
 * `token_refresh_at` (epoch ms) are when the access token expires and when half its life is over;
 * `refresh_lease_until` is held by the one instance refreshing it.
 */
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
    kind: text('kind', { enum: ['api_key', 'oauth'] })
      .notNull()
      .default('api_key'),
    refreshTokenCiphertext: text('refresh_token_ciphertext'),
    tokenExpiresAt: integer('token_expires_at'),
    tokenRefreshAt: integer('token_refresh_at'),
    refreshLeaseUntil: integer('refresh_lease_until'),
  },
  (t) => [index('connections_credential_idx').on(t.credentialId)],
)

/**
 * Authorizations started from the panel (*Connect with Kit*), by the SHA-256 of their `state`:
 * which community and session started each, the PKCE verifier (sealed), when it expires and when
 * the callback used it (each is used once). `return_to` is Kit's page to send the owner back to
 * when the install started in Kit's App Store.
 */
export const oauthStates = sqliteTable(
  'oauth_states',
  {
    stateHash: text('state_hash').primaryKey(),
    communityId: text('community_id').notNull(),
    sessionSub: text('session_sub').notNull(),
    verifierCiphertext: text('verifier_ciphertext').notNull(),
    returnTo: text('return_to'),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    usedAt: integer('used_at'),
  },
  (t) => [index('oauth_states_community_idx').on(t.communityId, t.sessionSub), index('oauth_states_expires_idx').on(t.expiresAt)],
)

/**
 * Installs that started in Kit's App Store, waiting for the owner to finish them in App Station:
 * by the SHA-256 of the code shown on the install page, with Kit's page to return to.
 */
export const oauthInstalls = sqliteTable(
  'oauth_installs',
  {
    codeHash: text('code_hash').primaryKey(),
    returnTo: text('return_to').notNull(),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    usedAt: integer('used_at'),
  },
  (t) => [index('oauth_installs_expires_idx').on(t.expiresAt)],
)

export type ConnectionRow = typeof connections.$inferSelect
