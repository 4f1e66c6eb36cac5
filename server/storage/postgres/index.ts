/**
 * The shared dialect: several instances on one PostgreSQL database. Leases expire instead of
 * being taken back at start, and Kit's budget is counted across instances (the ledger).
 */
import { openPostgres, PG_MIGRATIONS_FOLDER, pgMigrationsApplied, type PostgresOptions } from '../../db/postgres.ts'
import { postgresRunner } from '../common/sql.ts'
import { sharedStores } from '../common/stores.ts'
import { migrationCount } from '../migrations.ts'
import { PostgresKitStates } from './kit-states.ts'
import type { Storage } from '../../core/storage.ts'
import { PostgresKnownTags } from './known-tags.ts'
import { PostgresBudgetLedger } from './ledger.ts'
import { PostgresOutbox } from './outbox.ts'
import { PostgresQueue } from './queue.ts'
import { PostgresRateLimits } from './rate-limits.ts'

export async function createPostgresStorage(url: string, options: PostgresOptions = {}): Promise<Storage> {
  const { pool } = await openPostgres(url, options)
  const expected = migrationCount(PG_MIGRATIONS_FOLDER)
  return {
    dialect: 'postgres',
    ...sharedStores(postgresRunner(pool)),
    queue: new PostgresQueue(pool),
    platformOutbox: new PostgresOutbox(pool),
    kitStates: new PostgresKitStates(pool),
    ledger: new PostgresBudgetLedger(pool),
    knownTags: new PostgresKnownTags(pool),
    rateLimits: new PostgresRateLimits(pool),
    async health() {
      try {
        const applied = await pgMigrationsApplied(pool)
        return { database: 'ok', migrations: applied >= expected ? 'ok' : 'pending' }
      } catch {
        return { database: 'unreachable', migrations: 'unknown' }
      }
    },
    async close() {
      await pool.end()
    },
  }
}
