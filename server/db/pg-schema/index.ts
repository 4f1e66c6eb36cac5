/**
 * The PostgreSQL schema: the same tables, columns and indexes as the embedded one
 * (`../schema/`), for several instances sharing one database. Epoch-millisecond columns are
 * `bigint` (read as JavaScript numbers); the parity test keeps both schemas in step.
 */
import { sql } from 'drizzle-orm'
import { bigint, index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core'

const ms = (name: string) => bigint(name, { mode: 'number' })

export const connections = pgTable(
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
    tokenExpiresAt: ms('token_expires_at'),
    tokenRefreshAt: ms('token_refresh_at'),
    refreshLeaseUntil: ms('refresh_lease_until'),
  },
  (t) => [index('connections_credential_idx').on(t.credentialId)],
)

export const oauthStates = pgTable(
  'oauth_states',
  {
    stateHash: text('state_hash').primaryKey(),
    communityId: text('community_id').notNull(),
    sessionSub: text('session_sub').notNull(),
    verifierCiphertext: text('verifier_ciphertext').notNull(),
    returnTo: text('return_to'),
    createdAt: ms('created_at').notNull(),
    expiresAt: ms('expires_at').notNull(),
    usedAt: ms('used_at'),
  },
  (t) => [index('oauth_states_community_idx').on(t.communityId, t.sessionSub), index('oauth_states_expires_idx').on(t.expiresAt)],
)

export const oauthInstalls = pgTable(
  'oauth_installs',
  {
    codeHash: text('code_hash').primaryKey(),
    returnTo: text('return_to').notNull(),
    createdAt: ms('created_at').notNull(),
    expiresAt: ms('expires_at').notNull(),
    usedAt: ms('used_at'),
  },
  (t) => [index('oauth_installs_expires_idx').on(t.expiresAt)],
)

export const mappings = pgTable('mappings', {
  communityId: text('community_id').primaryKey(),
  document: text('document').notNull(),
  updatedAt: text('updated_at').notNull(),
})

export const heldTags = pgTable(
  'held_tags',
  {
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    name: text('name').notNull(),
    tagId: bigint('tag_id', { mode: 'number' }).notNull(),
    heldAt: ms('held_at').notNull(),
  },
  (t) => [primaryKey({ name: 'held_tags_pk', columns: [t.communityId, t.credentialId, t.name] })],
)

export const events = pgTable(
  'events',
  {
    communityId: text('community_id').notNull(),
    id: text('id').notNull(),
    type: text('type').notNull(),
    memberId: text('member_id').notNull(),
    memberEmail: text('member_email').notNull(),
    eventTime: ms('event_time').notNull(),
    payload: text('payload').notNull(),
    receivedAt: ms('received_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'events_pk', columns: [t.communityId, t.id] }),
    // A mappings preview reads each type's newest events of one community along this, whatever is held.
    index('events_recent_idx').on(t.communityId, t.type, t.eventTime),
  ],
)

export const deliveries = pgTable(
  'deliveries',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    id: text('id').notNull(),
    communityId: text('community_id').notNull(),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    memberId: text('member_id').notNull(),
    memberEmail: text('member_email').notNull(),
    eventTime: ms('event_time').notNull(),
    status: text('status', { enum: ['pending', 'retrying', 'held', 'succeeded', 'failed', 'skipped'] }).notNull(),
    attempts: bigint('attempts', { mode: 'number' }).notNull().default(0),
    lastError: text('last_error'),
    /** Why it was skipped, is waiting or is held, as a code (server/core/reasons.ts); last_error holds the words. */
    reason: text('reason'),
    kitRequests: bigint('kit_requests', { mode: 'number' }).notNull().default(0),
    steps: text('steps').notNull().default('[]'),
    nextAttemptAt: ms('next_attempt_at').notNull(),
    leaseOwner: text('lease_owner'),
    leaseUntil: ms('lease_until'),
    receivedAt: ms('received_at').notNull(),
    createdAt: text('created_at').notNull(),
    updatedAt: text('updated_at').notNull(),
    priority: bigint('priority', { mode: 'number' }).notNull().default(0),
    syncId: text('sync_id'),
  },
  (t) => [
    uniqueIndex('deliveries_id_idx').on(t.id),
    uniqueIndex('deliveries_event_idx').on(t.communityId, t.eventId),
    index('deliveries_ready_idx')
      .on(t.nextAttemptAt, t.seq)
      .where(sql`${t.status} IN ('pending', 'retrying')`),
    index('deliveries_finished_idx')
      .on(t.updatedAt)
      .where(sql`${t.status} IN ('succeeded', 'failed', 'skipped')`),
    index('deliveries_claim_idx')
      .on(t.communityId, t.priority, t.nextAttemptAt, t.seq)
      .where(sql`${t.status} IN ('pending', 'retrying')`),
    index('deliveries_sync_idx')
      .on(t.syncId, t.status)
      .where(sql`${t.syncId} IS NOT NULL`),
    index('deliveries_member_idx').on(t.communityId, t.memberId, t.eventTime),
    index('deliveries_community_seq_idx').on(t.communityId, t.seq),
    index('deliveries_deleted_idx')
      .on(t.communityId, t.memberId, t.eventTime)
      .where(sql`${t.eventType} = 'user.deleted'`),
  ],
)

export const orderingMarks = pgTable(
  'ordering_marks',
  {
    communityId: text('community_id').notNull(),
    scope: text('scope').notNull(),
    eventTime: ms('event_time').notNull(),
    eventId: text('event_id').notNull(),
  },
  (t) => [primaryKey({ name: 'ordering_marks_pk', columns: [t.communityId, t.scope] })],
)

export const kitSubscribers = pgTable(
  'kit_subscribers',
  {
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    memberId: text('member_id').notNull(),
    email: text('email').notNull(),
    subscriberId: bigint('subscriber_id', { mode: 'number' }).notNull(),
    firstName: text('first_name'),
    fields: text('fields').notNull(),
    updatedAt: ms('updated_at').notNull(),
  },
  (t) => [primaryKey({ name: 'kit_subscribers_pk', columns: [t.communityId, t.credentialId, t.memberId] })],
)

export const syncs = pgTable(
  'syncs',
  {
    id: text('id').primaryKey(),
    communityId: text('community_id').notNull(),
    status: text('status', { enum: ['importing', 'running', 'paused', 'completed', 'cancelled'] }).notNull(),
    format: text('format', { enum: ['csv', 'jsonl'] }).notNull(),
    startedAt: ms('started_at').notNull(),
    total: bigint('total', { mode: 'number' }).notNull().default(0),
    refused: bigint('refused', { mode: 'number' }).notNull().default(0),
    refusedExamples: text('refused_examples').notNull().default('[]'),
    done: bigint('done', { mode: 'number' }),
    failed: bigint('failed', { mode: 'number' }),
    skipped: bigint('skipped', { mode: 'number' }),
    kitRequests: bigint('kit_requests', { mode: 'number' }),
    finishedAt: ms('finished_at'),
    updatedAt: ms('updated_at').notNull(),
  },
  (t) => [index('syncs_community_idx').on(t.communityId, t.startedAt)],
)

export const syncColumnMappings = pgTable('sync_column_mappings', {
  communityId: text('community_id').primaryKey(),
  mapping: text('mapping').notNull(),
  updatedAt: ms('updated_at').notNull(),
})

export const kitBudgetLedger = pgTable(
  'kit_budget_ledger',
  {
    id: text('id').primaryKey(),
    credentialId: text('credential_id').notNull(),
    takenAt: ms('taken_at').notNull(),
    freesAt: ms('frees_at').notNull(),
  },
  (t) => [index('kit_budget_ledger_credential_idx').on(t.credentialId, t.freesAt)],
)

export const kitBudgetBlocks = pgTable('kit_budget_blocks', {
  credentialId: text('credential_id').primaryKey(),
  until: ms('until').notNull(),
  strikes: bigint('strikes', { mode: 'number' }).notNull().default(1),
})

/** Allowances shared by every instance (see the embedded schema's `rate_limits`). */
export const rateLimits = pgTable(
  'rate_limits',
  {
    key: text('key').primaryKey(),
    hits: integer('hits').notNull(),
    resetsAt: ms('resets_at').notNull(),
  },
  (t) => [index('rate_limits_resets_idx').on(t.resetsAt)],
)

export const kitTags = pgTable(
  'kit_tags',
  {
    credentialId: text('credential_id').notNull(),
    name: text('name').notNull(),
    tagId: bigint('tag_id', { mode: 'number' }).notNull(),
    learntAt: ms('learnt_at').notNull(),
  },
  (t) => [primaryKey({ name: 'kit_tags_pk', columns: [t.credentialId, t.name] })],
)
export * from './platform-events.ts'
export * from './kit-watch.ts'
export * from './settings.ts'
export * from './erasures.ts'
export * from './mapping-versions.ts'
