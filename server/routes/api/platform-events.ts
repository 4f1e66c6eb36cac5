import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '#shared/api.ts'
import { PlatformEvent, PlatformEventPage, PlatformEventState, PlatformEventSummary } from '#shared/platform-events.ts'
import { answer, notFound, security, sessionErrors } from './common.ts'

/** The events told to App Station (Kit's side of the truth), for the panel's "Kit → App Station" section. */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { service } = app.platformEvents

  app.get(
    '/platform-events',
    {
      config: { polled: true },
      schema: {
        operationId: 'listPlatformEvents',
        summary: 'List the events told to App Station, newest first',
        description: 'Filters by state; `next_cursor` pages.',
        tags: ['platform-events'],
        security,
        querystring: Type.Object(
          {
            status: Type.Optional(PlatformEventState),
            cursor: Type.Optional(Type.String({ maxLength: 100, description: 'next_cursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Page size, 50 by default' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: answer(PlatformEventPage, 'One page of events; next_cursor is null on the last page'),
          ...sessionErrors,
        },
      },
    },
    async (request) => {
      const { status, cursor, limit } = request.query
      return service.list(request.user.communityId, {
        ...(status ? { status } : {}),
        ...(cursor ? { cursor } : {}),
        ...(limit ? { limit } : {}),
      })
    },
  )

  app.get(
    '/platform-events/summary',
    {
      config: { polled: true },
      schema: {
        operationId: 'summarisePlatformEvents',
        summary: 'Whether events to App Station are configured, and those of the last 30 days counted by type and state',
        tags: ['platform-events'],
        security,
        response: {
          200: answer(PlatformEventSummary, 'The summary; counts is empty when nothing was told'),
          ...sessionErrors,
        },
      },
    },
    async (request) => service.summary(request.user.communityId),
  )

  app.post(
    '/platform-events/:id/retry',
    {
      schema: {
        operationId: 'retryPlatformEvent',
        summary: 'Send one failed event to App Station again',
        description: 'The event keeps its id and is retried for another 72 hours.',
        tags: ['platform-events'],
        security,
        params: Type.Object({ id: Type.String({ maxLength: 100, description: 'The event id (kitevt_…)' }) }),
        response: {
          202: answer(PlatformEvent, 'Queued again; the event as it now stands (pending)'),
          ...sessionErrors,
          404: notFound,
          409: {
            ...ErrorBody,
            description: '`not_retryable`: only failed events can be sent again; `platform_events_not_configured`: nowhere to send them',
          },
        },
      },
    },
    async (request, reply) => reply.status(202).send(await service.retry(request.user.communityId, request.params.id)),
  )
}

export default routes
