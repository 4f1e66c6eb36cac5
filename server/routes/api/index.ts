/**
 * The settings API: one auth boundary and one rate limit for the whole `/api/v1` scope (unknown
 * paths answer 404 without either; a token that fails counts against its source), and every answer, errors included, marked never to be cached
 * or content-sniffed.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError } from '../../lib/errors.ts'
import { SessionRefused } from '../../plugins/auth.ts'
import connectionRoutes from './connection.ts'
import consentRoutes from './consent.ts'
import deliveryRoutes from './deliveries.ts'
import erasureRoutes from './erasures.ts'
import kitRoutes from './kit.ts'
import mappingHistoryRoutes from './mapping-history.ts'
import mappingRoutes from './mappings.ts'
import platformEventRoutes from './platform-events.ts'
import syncRoutes from './syncs.ts'

const api: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', async (request, reply) => {
    if (request.is404) return
    try {
      await app.requireSession(request, reply)
    } catch (err) {
      if (err instanceof SessionRefused && err.reason === 'invalid') await app.apiLimits.failedSession(request)
      throw err
    }
    await app.apiLimits.perUser(request)
  })
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('cache-control', 'no-store')
  })
  app.setNotFoundHandler((request) => {
    throw new AppError(404, 'not_found', `Nothing at ${request.method} ${request.url.split('?')[0]}`)
  })
  await app.register(connectionRoutes)
  await app.register(mappingRoutes)
  await app.register(consentRoutes)
  await app.register(mappingHistoryRoutes)
  await app.register(kitRoutes)
  await app.register(deliveryRoutes)
  await app.register(syncRoutes)
  await app.register(platformEventRoutes)
  await app.register(erasureRoutes)
}

export default api
