import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'

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

/** Kit answered 429 for the credential: no instance sends for it before `until`. */
export const kitBudgetBlocks = sqliteTable('kit_budget_blocks', {
  credentialId: text('credential_id').primaryKey(),
  until: integer('until').notNull(),
})
