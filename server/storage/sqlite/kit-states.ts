/** The embedded dialect's Kit watch tables: the shared store (`../common/kit-states.ts`) over one SQLite file. */
import type Database from 'better-sqlite3'
import { KitStateStore } from '../common/kit-states.ts'
import { sqliteRunner } from '../common/sql.ts'

export class SqliteKitStates extends KitStateStore {
  constructor(sqlite: Database.Database) {
    super(sqliteRunner(sqlite))
  }
}
