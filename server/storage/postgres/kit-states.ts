/** The shared dialect's Kit watch tables: the shared store (`../common/kit-states.ts`) over a PostgreSQL pool. */
import type pg from 'pg'
import { KitStateStore } from '../common/kit-states.ts'
import { postgresRunner } from '../common/sql.ts'

export class PostgresKitStates extends KitStateStore {
  constructor(pool: pg.Pool) {
    super(postgresRunner(pool))
  }
}
