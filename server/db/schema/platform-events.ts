import { sql } from 'drizzle-orm'
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'

/**
 * The outbox of events to the platform (Kit's side of the truth): one row per event, its id kept
 * for every attempt. `state` is a code (`pending`, `sent`, `failed`), `last_error` a code too
 * (`http_503`, `timeout`, `network`); `once_key` holds a state a member reached, reported once.
 */
export const platformEvents = sqliteTable(
  'platform_events',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    id: text('id').notNull(),
    communityId: text('community_id').notNull(),
    type: text('type').notNull(),
    memberId: text('member_id'),
    onceKey: text('once_key'),
    /** The CloudEvent as sent, JSON. */
    body: text('body').notNull(),
    state: text('state', { enum: ['pending', 'sent', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    nextAttemptAt: integer('next_attempt_at').notNull(),
    /** After this moment (epoch ms) a failed attempt marks the event failed instead of retrying it. */
    giveUpAt: integer('give_up_at').notNull(),
    leaseOwner: text('lease_owner'),
    leaseUntil: integer('lease_until'),
    observedAt: integer('observed_at').notNull(),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    sentAt: integer('sent_at'),
  },
  (t) => [
    uniqueIndex('platform_events_id_idx').on(t.id),
    uniqueIndex('platform_events_once_idx').on(t.communityId, t.onceKey),
    index('platform_events_ready_idx')
      .on(t.nextAttemptAt, t.seq)
      .where(sql`${t.state} = 'pending'`),
    index('platform_events_member_idx').on(t.communityId, t.memberId, t.seq),
    index('platform_events_community_idx').on(t.communityId, t.seq),
  ],
)

/** Deliveries that failed for good, tallied until a `kit.deliveries.failing` event reports them (`notice_id`). */
export const platformFailures = sqliteTable(
  'platform_failures',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    communityId: text('community_id').notNull(),
    reason: text('reason').notNull(),
    failedAt: integer('failed_at').notNull(),
    noticeId: text('notice_id'),
  },
  (t) => [
    index('platform_failures_unreported_idx')
      .on(t.communityId, t.seq)
      .where(sql`${t.noticeId} IS NULL`),
  ],
)
