import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const Health = Type.Object({ status: Type.String() }, { description: 'The process is up' })
const Ready = Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) })
const ready = { ...Ready, description: 'The database answers and every migration is applied' }
const notReady = { ...Ready, description: 'Not ready: checks says which part (database, migrations) is not' }

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    { schema: { operationId: 'health', summary: 'Liveness', tags: ['operations'], response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'ready',
        summary: 'Readiness: database reachable and migrations applied',
        tags: ['operations'],
        response: { 200: ready, 503: notReady },
      },
    },
    async (_request, reply) => {
      const checks: Record<string, string> = { ...(await app.storage.health()) }
      const ready = Object.values(checks).every((v) => v === 'ok')
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks })
    },
  )
}

export default routes
