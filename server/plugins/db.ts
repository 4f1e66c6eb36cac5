import fp from 'fastify-plugin'
import type Database from 'better-sqlite3'
import type { Db } from '../db/index.ts'
import { openStorage } from '../storage/index.ts'
import type { Storage } from '../core/storage.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Every table behind its repository: the one way the application reads and writes data. */
    storage: Storage
    /**
     * The embedded dialect's database, for tests and tools that inspect it; not decorated when
     * the storage is PostgreSQL. Application code goes through `storage`.
     */
    sqlite: Database.Database
    db: Db
  }
}

/** Opens the storage the config names (SQLite file, or PostgreSQL with DATABASE_URL), applies migrations, closes it with the app. */
export default fp(
  async (app) => {
    const opened = await openStorage(app.config)
    app.decorate('storage', opened.storage)
    if (opened.sqlite) {
      app.decorate('sqlite', opened.sqlite.sqlite)
      app.decorate('db', opened.sqlite.db)
    }
    app.addHook('onClose', async () => {
      await opened.storage.close()
    })
  },
  { name: 'db', dependencies: ['config'] },
)
