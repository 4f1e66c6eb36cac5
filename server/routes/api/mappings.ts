import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Mappings } from '../../../shared/api.ts'
import { answer, security, sessionErrors } from './common.ts'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { mappings } = app.services

  app.get(
    '/mappings',
    {
      schema: {
        operationId: 'getMappings',
        summary: 'The mapping document (the defaults until one is saved)',
        tags: ['mappings'],
        security,
        response: { 200: answer(Mappings, 'The mapping document'), ...sessionErrors },
      },
    },
    async (request) => mappings.get(request.user.communityId),
  )

  app.put(
    '/mappings',
    {
      schema: {
        operationId: 'putMappings',
        summary: 'Replace the mapping document',
        tags: ['mappings'],
        security,
        body: Mappings,
        response: { 200: answer(Mappings, 'The saved mapping document'), ...sessionErrors },
      },
    },
    async (request) => mappings.put(request.user.communityId, request.body),
  )
}

export default routes
