/**
 * The shared dialect: several instances on one PostgreSQL database. Leases expire instead of
 * being taken back at start, and Kit's budget is counted across instances (the ledger).
 */
import { openPostgres, PG_MIGRATIONS_FOLDER, pgMigrationsApplied, type PostgresOptions } from '../../db/postgres.ts'
import { migrationCount } from '../migrations.ts'
import { PgOutbox } from './outbox.ts'
import { PgKitStates } from './kit-states.ts'
import type { Storage } from '../../core/storage.ts'
import { PostgresConnections } from './connections.ts'
import { PgDeliveryReads } from './deliveries.ts'
import { PgKnownTags } from './known-tags.ts'
import { PgBudgetLedger } from './ledger.ts'
import { PostgresHeldTags } from './held-tags.ts'
import { PostgresMappings } from './mappings.ts'
import { PgRateLimits } from './rate-limits.ts'
import { PgQueue } from './queue.ts'
import { PostgresSubscribers } from './subscribers.ts'
import { PostgresSyncs } from './syncs.ts'

export async function createPostgresStorage(url: string, options: PostgresOptions = {}): Promise<Storage> {
  const opened = await openPostgres(url, options)
  const { pool } = opened
  const expected = migrationCount(PG_MIGRATIONS_FOLDER)
  return {
    dialect: 'postgres',
    connections: new PostgresConnections(opened),
    mappings: new PostgresMappings(opened),
    heldTags: new PostgresHeldTags(opened),
    subscribers: new PostgresSubscribers(opened),
    queue: new PgQueue(pool),
    deliveries: new PgDeliveryReads(pool),
    syncs: new PostgresSyncs(opened),
    platformOutbox: new PgOutbox(pool),
    kitStates: new PgKitStates(pool),
    ledger: new PgBudgetLedger(pool),
    knownTags: new PgKnownTags(pool),
    rateLimits: new PgRateLimits(pool),
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
