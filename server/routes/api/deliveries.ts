import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import {
  Delivery,
  DeliveryOrder,
  DeliveryPage,
  DeliveryStatus,
  ErrorBody,
  ReplayableDeliveries,
  RETRY_MANY_MAX,
  RetryDeliveriesBody,
  RetryDeliveriesResult,
} from '#shared/api.ts'
import { answer, notFound, security, sessionErrors } from './common.ts'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { deliveries } = app.pipeline

  app.get(
    '/deliveries',
    {
      config: { polled: true },
      schema: {
        operationId: 'listDeliveries',
        summary: 'List deliveries, newest first by default, with what each one did in Kit',
        description:
          "Filters by status and by part of the member email; `order=oldest` reads one member's story forwards; `next_cursor` pages. " +
          "When `member` is one member's whole email, `member_kit` says what the plugin last saw of them in Kit.",
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

  app.get(
    '/deliveries/replayable',
    {
      schema: {
        operationId: 'countReplayableDeliveries',
        summary: 'Count the deliveries recorded while no Kit account was connected',
        description:
          'What `POST /deliveries/retry` with `{"status":"skipped","reason":"not_connected"}` would send: how many deliveries, ' +
          'for how many members, and how many of each event type. Answers with or without a connection.',
        tags: ['deliveries'],
        security,
        response: {
          200: answer(ReplayableDeliveries, 'The deliveries a replay would send; count 0 when there are none'),
          ...sessionErrors,
        },
      },
    },
    async (request) => deliveries.replayable(request.user.communityId),
  )

  app.post(
    '/deliveries/retry',
    {
      schema: {
        operationId: 'retryDeliveries',
        summary: 'Send many deliveries again',
        description:
          `Re-queues, oldest event first, up to ${RETRY_MANY_MAX} of the community's deliveries: every failed one ` +
          '(`{"status":"failed"}`), or every one recorded while no Kit account was connected ' +
          '(`{"status":"skipped","reason":"not_connected"}`). Each goes through the same ordering guard as a new event: ' +
          'one older than an event already applied in its scope stays skipped. Call again while `remaining` is above 0.',
        tags: ['deliveries'],
        security,
        body: RetryDeliveriesBody,
        response: {
          202: RetryDeliveriesResult,
          ...sessionErrors,
          400: { ...ErrorBody, description: 'The body names no retryable set (reason missing or not allowed)' },
          409: { ...ErrorBody, description: '`not_connected`: no Kit account is connected to send them to' },
        },
      },
    },
    async (request, reply) => reply.status(202).send(await deliveries.retryMany(request.user.communityId, request.body)),
  )

  app.post(
    '/deliveries/:id/retry',
    {
      schema: {
        operationId: 'retryDelivery',
        summary: 'Send one failed or skipped delivery again',
        description: 'The delivery goes back to the queue and through the same ordering guard as a new event.',
        tags: ['deliveries'],
        security,
        params: Type.Object({ id: Type.String({ maxLength: 100, description: 'The delivery id' }) }),
        response: {
          202: answer(Delivery, 'Queued again; the delivery as it now stands (pending)'),
          ...sessionErrors,
          404: notFound,
          409: { ...ErrorBody, description: '`not_retryable`: only failed or skipped deliveries can be retried' },
        },
      },
    },
    async (request, reply) => reply.status(202).send(await deliveries.retry(request.user.communityId, request.params.id)),
  )
}

export default routes
