import fp from 'fastify-plugin'
import type Database from 'better-sqlite3'
import { openDatabase, type Db } from '../db/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    sqlite: Database.Database
  }
}

/** Opens the database named by the config, applies migrations, closes it with the app. */
export default fp(
  async (app) => {
    const { db, sqlite } = openDatabase(app.config.databasePath)
    app.decorate('db', db)
    app.decorate('sqlite', sqlite)
    app.addHook('onClose', async () => {
      sqlite.close()
    })
  },
  { name: 'db', dependencies: ['config'] },
)
