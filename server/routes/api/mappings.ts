import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Mappings } from '../../../shared/api.ts'
import { security, sessionErrors } from './common.ts'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { mappings } = app.services

  app.get(
    '/mappings',
    { schema: { tags: ['mappings'], security, response: { 200: Mappings, ...sessionErrors } } },
    async (request) => mappings.get(request.user.communityId),
  )

  app.put(
    '/mappings',
    { schema: { tags: ['mappings'], security, body: Mappings, response: { 200: Mappings, ...sessionErrors } } },
    async (request) => mappings.put(request.user.communityId, request.body),
  )
}

export default routes
