import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { DeliveryPage, DeliveryStatus, ErrorBody } from '../../../shared/api.ts'
import { NoContent, security, sessionErrors } from './common.ts'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { deliveries } = app.pipeline

  app.get(
    '/deliveries',
    {
      schema: {
        tags: ['deliveries'],
        security,
        querystring: Type.Object(
          {
            status: Type.Optional(DeliveryStatus),
            member: Type.Optional(Type.String({ maxLength: 320 })),
            cursor: Type.Optional(Type.String({ maxLength: 100 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: DeliveryPage, ...sessionErrors },
      },
    },
    async (request) => {
      const { status, member, cursor, limit } = request.query
      return deliveries.list(request.user.communityId, {
        ...(status ? { status } : {}),
        ...(member ? { member } : {}),
        ...(cursor ? { cursor } : {}),
        ...(limit ? { limit } : {}),
      })
    },
  )

  app.post(
    '/deliveries/:id/retry',
    {
      schema: {
        tags: ['deliveries'],
        security,
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 202: NoContent, 404: ErrorBody, ...sessionErrors },
      },
    },
    async (request, reply) => {
      deliveries.retry(request.user.communityId, request.params.id)
      return reply.status(202).send(null)
    },
  )
}

export default routes
