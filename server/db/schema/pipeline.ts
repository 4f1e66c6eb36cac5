import { sql } from 'drizzle-orm'
import { sqliteTable, text, integer, index, primaryKey, uniqueIndex } from 'drizzle-orm/sqlite-core'

/** The event inbox: every accepted member event exactly once per community, as received. */
export const events = sqliteTable(
  'events',
  {
    communityId: text('community_id').notNull(),
    id: text('id').notNull(),
    type: text('type').notNull(),
    memberId: text('member_id').notNull(),
    memberEmail: text('member_email').notNull(),
    eventTime: integer('event_time').notNull(),
    payload: text('payload').notNull(),
    receivedAt: integer('received_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'events_pk', columns: [t.communityId, t.id] }),
    // A mappings preview reads each type's newest events of one community along this, whatever is held.
    index('events_recent_idx').on(t.communityId, t.type, t.eventTime),
  ],
)

/**
 * The durable queue and the owner's record in one: one delivery per event. `status` is internal
 * (`held` waits for a working key); `lease_*` mark work a consumer has claimed.
 */
export const deliveries = sqliteTable(
  'deliveries',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    id: text('id').notNull(),
    communityId: text('community_id').notNull(),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    memberId: text('member_id').notNull(),
    memberEmail: text('member_email').notNull(),
    eventTime: integer('event_time').notNull(),
    status: text('status', { enum: ['pending', 'retrying', 'held', 'succeeded', 'failed', 'skipped'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    /** Why it was skipped, is waiting or is held, as a code (server/core/reasons.ts); last_error holds the words. */
    reason: text('reason'),
    kitRequests: integer('kit_requests').notNull().default(0),
    /** JSON array of DeliveryStep: what the last attempt did. */
    steps: text('steps').notNull().default('[]'),
    nextAttemptAt: integer('next_attempt_at').notNull(),
    leaseOwner: text('lease_owner'),
    leaseUntil: integer('lease_until'),
    receivedAt: integer('received_at').notNull(),
    createdAt: text('created_at').notNull(),
    updatedAt: text('updated_at').notNull(),
    /** 0 for live events, 1 for member snapshots: live work is claimed first. */
    priority: integer('priority').notNull().default(0),
    /** The initial sync this delivery belongs to, if any. */
    syncId: text('sync_id'),
  },
  (t) => [
    uniqueIndex('deliveries_id_idx').on(t.id),
    uniqueIndex('deliveries_event_idx').on(t.communityId, t.eventId),
    // The consumer's claim walks this in order and stops at its limit: no sort, whatever the backlog.
    index('deliveries_ready_idx')
      .on(t.nextAttemptAt, t.seq)
      .where(sql`${t.status} IN ('pending', 'retrying')`),
    // Retention walks finished deliveries oldest first; work still to do is never in it.
    index('deliveries_finished_idx')
      .on(t.updatedAt)
      .where(sql`${t.status} IN ('succeeded', 'failed', 'skipped')`),
    // The claim takes turns between communities: it steps from one community with waiting work to
    // the next, and walks each one's work in its order (live events first, then due time).
    index('deliveries_claim_idx')
      .on(t.communityId, t.priority, t.nextAttemptAt, t.seq)
      .where(sql`${t.status} IN ('pending', 'retrying')`),
    // A sync's progress: its deliveries counted by status.
    index('deliveries_sync_idx')
      .on(t.syncId, t.status)
      .where(sql`${t.syncId} IS NOT NULL`),
    index('deliveries_member_idx').on(t.communityId, t.memberId, t.eventTime),
    index('deliveries_community_seq_idx').on(t.communityId, t.seq),
    // Retention looks for deleted members whose personal data is still stored: their deletions only.
    index('deliveries_deleted_idx')
      .on(t.communityId, t.memberId, t.eventTime)
      .where(sql`${t.eventType} = 'user.deleted'`),
  ],
)

/** The newest event applied per subscription and per access level: older ones never undo it. */
export const orderingMarks = sqliteTable(
  'ordering_marks',
  {
    communityId: text('community_id').notNull(),
    scope: text('scope').notNull(),
    eventTime: integer('event_time').notNull(),
    eventId: text('event_id').notNull(),
  },
  (t) => [primaryKey({ name: 'ordering_marks_pk', columns: [t.communityId, t.scope] })],
)

/** What we last wrote to Kit per member, so unchanged profiles cost no request. */
export const kitSubscribers = sqliteTable(
  'kit_subscribers',
  {
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    memberId: text('member_id').notNull(),
    email: text('email').notNull(),
    subscriberId: integer('subscriber_id').notNull(),
    firstName: text('first_name'),
    fields: text('fields').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ name: 'kit_subscribers_pk', columns: [t.communityId, t.credentialId, t.memberId] })],
)
