/** The settings API (CONTRACT §5): one auth boundary for the whole `/api/v1` scope. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import connectionRoutes from './connection.ts'
import deliveryRoutes from './deliveries.ts'
import kitRoutes from './kit.ts'
import mappingRoutes from './mappings.ts'

const api: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.requireSession)
  app.addHook('onRequest', app.apiLimits.perUser)
  await app.register(connectionRoutes)
  await app.register(mappingRoutes)
  await app.register(kitRoutes)
  await app.register(deliveryRoutes)
}

export default api
