import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/**
 * Initial syncs: one row per accepted member file. Its members are ordinary deliveries (of type
 * `member.snapshot`, carrying the sync's id), so a sync's progress is its deliveries' progress;
 * the counts here are kept once it is finished, when retention may delete those deliveries.
 * `importing` is a file still being read: its deliveries wait (held) until the whole file is
 * accepted, and are deleted if it is refused or the process dies before the end.
 */
export const syncs = sqliteTable(
  'syncs',
  {
    id: text('id').primaryKey(),
    communityId: text('community_id').notNull(),
    status: text('status', { enum: ['importing', 'running', 'paused', 'completed', 'cancelled'] }).notNull(),
    format: text('format', { enum: ['csv', 'jsonl'] }).notNull(),
    /** The snapshot's time (epoch ms): a live event newer than this wins over the snapshot. */
    startedAt: integer('started_at').notNull(),
    total: integer('total').notNull().default(0),
    refused: integer('refused').notNull().default(0),
    /** JSON array of SyncRefusedRow: the first refused rows, with the reason. */
    refusedExamples: text('refused_examples').notNull().default('[]'),
    /** Counts kept when the sync finished (its deliveries may be gone by retention later). */
    done: integer('done'),
    failed: integer('failed'),
    skipped: integer('skipped'),
    kitRequests: integer('kit_requests'),
    finishedAt: integer('finished_at'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('syncs_community_idx').on(t.communityId, t.startedAt)],
)

/**
 * The column mapping of a community's last member file (column → member field or null, JSON): the
 * next import starts from it, so an export from another platform is mapped once.
 */
export const syncColumnMappings = sqliteTable('sync_column_mappings', {
  communityId: text('community_id').primaryKey(),
  mapping: text('mapping').notNull(),
  updatedAt: integer('updated_at').notNull(),
})
