import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Delivery, DeliveryOrder, DeliveryPage, DeliveryStatus } from '../../../shared/api.ts'
import { answer, notFound, security, sessionErrors } from './common.ts'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { deliveries } = app.pipeline

  app.get(
    '/deliveries',
    {
      schema: {
        operationId: 'listDeliveries',
        summary: 'List deliveries, newest first by default, with what each one did in Kit',
        tags: ['deliveries'],
        security,
        querystring: Type.Object(
          {
            status: Type.Optional(DeliveryStatus),
            member: Type.Optional(Type.String({ maxLength: 320, description: 'Part of the member email address to match' })),
            order: Type.Optional(DeliveryOrder),
            cursor: Type.Optional(Type.String({ maxLength: 100, description: 'next_cursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Page size, 50 by default' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: answer(DeliveryPage, 'One page of deliveries; next_cursor is null on the last page'),
          ...sessionErrors,
        },
      },
    },
    async (request) => {
      const { status, member, order, cursor, limit } = request.query
      return deliveries.list(request.user.communityId, {
        ...(status ? { status } : {}),
        ...(member ? { member } : {}),
        ...(order ? { order } : {}),
        ...(cursor ? { cursor } : {}),
        ...(limit ? { limit } : {}),
      })
    },
  )

  app.post(
    '/deliveries/:id/retry',
    {
      schema: {
        operationId: 'retryDelivery',
        summary: 'Queue a failed delivery for another attempt',
        tags: ['deliveries'],
        security,
        params: Type.Object({ id: Type.String({ maxLength: 100, description: 'The delivery id' }) }),
        response: {
          202: answer(Delivery, 'Queued again; the delivery as it now stands (pending)'),
          ...sessionErrors,
          404: notFound,
          409: answer(sessionErrors[409], 'not_failed: only failed deliveries can be retried; or the connection is missing'),
        },
      },
    },
    async (request, reply) => reply.status(202).send(deliveries.retry(request.user.communityId, request.params.id)),
  )
}

export default routes
