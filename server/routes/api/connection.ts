import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Connection, ConnectionTestResult, ErrorBody, PutConnectionBody } from '../../../shared/api.ts'
import { NoContent, security, sessionErrors } from './common.ts'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { connections, catalogue } = app.services

  app.get(
    '/connection',
    { schema: { tags: ['connection'], security, response: { 200: Connection, ...sessionErrors } } },
    async (request) => connections.get(request.user.communityId),
  )

  app.put(
    '/connection',
    {
      onRequest: app.apiLimits.kitKeyChecks,
      schema: {
        tags: ['connection'],
        security,
        body: PutConnectionBody,
        response: { 200: Connection, 422: ErrorBody, ...sessionErrors },
      },
    },
    async (request) => connections.connect(request.user.communityId, request.body.api_key),
  )

  app.delete(
    '/connection',
    { schema: { tags: ['connection'], security, response: { 204: NoContent, ...sessionErrors } } },
    async (request, reply) => {
      connections.disconnect(request.user.communityId)
      catalogue.invalidate(request.user.communityId)
      return reply.status(204).send(null)
    },
  )

  app.post(
    '/connection/test',
    {
      onRequest: app.apiLimits.kitKeyChecks,
      schema: { tags: ['connection'], security, response: { 200: ConnectionTestResult, ...sessionErrors } },
    },
    async (request) => catalogue.test(request.user.communityId),
  )
}

export default routes
