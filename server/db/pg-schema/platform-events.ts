/** The outbox of events to the platform, as `../schema/platform-events.ts` declares it for SQLite. */
import { sql } from 'drizzle-orm'
import { bigint, index, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core'

const ms = (name: string) => bigint(name, { mode: 'number' })

export const platformEvents = pgTable(
  'platform_events',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    id: text('id').notNull(),
    communityId: text('community_id').notNull(),
    type: text('type').notNull(),
    memberId: text('member_id'),
    onceKey: text('once_key'),
    body: text('body').notNull(),
    state: text('state', { enum: ['pending', 'sent', 'failed'] }).notNull(),
    attempts: bigint('attempts', { mode: 'number' }).notNull().default(0),
    lastError: text('last_error'),
    nextAttemptAt: ms('next_attempt_at').notNull(),
    giveUpAt: ms('give_up_at').notNull(),
    leaseOwner: text('lease_owner'),
    leaseUntil: ms('lease_until'),
    observedAt: ms('observed_at').notNull(),
    createdAt: ms('created_at').notNull(),
    updatedAt: ms('updated_at').notNull(),
    sentAt: ms('sent_at'),
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

export const platformFailures = pgTable(
  'platform_failures',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    communityId: text('community_id').notNull(),
    reason: text('reason').notNull(),
    failedAt: ms('failed_at').notNull(),
    noticeId: text('notice_id'),
  },
  (t) => [
    index('platform_failures_unreported_idx')
      .on(t.communityId, t.seq)
      .where(sql`${t.noticeId} IS NULL`),
  ],
)
