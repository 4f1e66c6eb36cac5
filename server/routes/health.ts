import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { readdirSync } from 'node:fs'
import { Type } from 'typebox'
import { MIGRATIONS_FOLDER, migrationsApplied } from '../db/index.ts'

const Health = Type.Object({ status: Type.String() })
const Ready = Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) })

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const expectedMigrations = readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith('.sql')).length

  app.get('/healthz', { schema: { tags: ['operations'], response: { 200: Health } } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: { tags: ['operations'], response: { 200: Ready, 503: Ready } } }, async (_request, reply) => {
    const checks: Record<string, string> = {}
    try {
      app.sqlite.prepare('SELECT 1').get()
      checks.database = 'ok'
      checks.migrations = migrationsApplied(app.sqlite, expectedMigrations) ? 'ok' : 'pending'
    } catch (err) {
      app.log.error({ err }, 'readiness check failed')
      checks.database = 'unreachable'
    }
    const ready = Object.values(checks).every((v) => v === 'ok')
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks })
  })
}

export default routes
