import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/**
 * Kit requests across every instance sharing the database, per credential: a row is taken before
 * a request is sent and frees its slot at `frees_at` (a window after the answer; until then, a
 * stale-request bound, so a crashed instance's requests still count). The embedded dialect keeps
 * its budget in memory; the table exists in both so that the schemas stay the same.
 */
export const kitBudgetLedger = sqliteTable(
  'kit_budget_ledger',
  {
    id: text('id').primaryKey(),
    credentialId: text('credential_id').notNull(),
    takenAt: integer('taken_at').notNull(),
    freesAt: integer('frees_at').notNull(),
  },
  (t) => [index('kit_budget_ledger_credential_idx').on(t.credentialId, t.freesAt)],
)

/**
 * Kit answered 429 for the credential: no instance sends for it before `until`. `strikes` counts
 * the 429s in a row, each after the previous block ended (it makes the next block longer); the row
 * goes once Kit answers the credential again.
 */
export const kitBudgetBlocks = sqliteTable('kit_budget_blocks', {
  credentialId: text('credential_id').primaryKey(),
  until: integer('until').notNull(),
  strikes: integer('strikes').notNull().default(1),
})

/**
 * Tags the plugin created or found in Kit, per credential, by lower-cased name: an instance whose
 * cached tag list predates a tag another instance created finds it here instead of assuming it
 * does not exist. Only read on a shared database; the embedded dialect has one cache.
 */
export const kitTags = sqliteTable(
  'kit_tags',
  {
    credentialId: text('credential_id').notNull(),
    name: text('name').notNull(),
    tagId: integer('tag_id').notNull(),
    learntAt: integer('learnt_at').notNull(),
  },
  (t) => [primaryKey({ name: 'kit_tags_pk', columns: [t.credentialId, t.name] })],
)

/**
 * Request allowances shared by every instance on the database (settings API per user, Kit key
 * checks per community, failed session tokens per source): one fixed window per key, counted in
 * `hits` until `resets_at`. The key is a digest, never the user id or address itself. The embedded
 * dialect counts in memory; the table exists in both so that the schemas stay the same.
 */
export const rateLimits = sqliteTable(
  'rate_limits',
  {
    key: text('key').primaryKey(),
    hits: integer('hits').notNull(),
    resetsAt: integer('resets_at').notNull(),
  },
  (t) => [index('rate_limits_resets_idx').on(t.resetsAt)],
)
