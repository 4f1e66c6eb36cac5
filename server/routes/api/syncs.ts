/**
 * Initial syncs. The member file is not parsed by Fastify: its stream goes to the sync service,
 * which reads it line by line and enforces its own size limit (SYNC_MAX_BYTES), so the settings
 * API's small body limit stays in force everywhere else.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Readable } from 'node:stream'
import { Type } from 'typebox'
import { ErrorBody, Sync, SyncList, SyncPlan } from '#shared/api.ts'
import { AppError } from '../../lib/errors.ts'
import type { SyncFormat } from '../../pipeline/sync-input.ts'
import { answer, notFound, security, sessionErrors } from './common.ts'

const FORMATS: Record<string, SyncFormat> = {
  'text/csv': 'csv',
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
}

const VERB_WORDS = { pause: 'Pause (hold its waiting members)', resume: 'Resume', cancel: 'Cancel (skip its remaining members)' } as const

const unsupported = () =>
  new AppError(415, 'unsupported_media_type', 'Send the member file as text/csv (a header line, then one member a line) or application/x-ndjson (one JSON object a line).')

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { syncs } = app.pipeline
  const SyncId = Type.Object({ id: Type.String({ maxLength: 100 }) })

  // Scoped to these routes: the request stream itself is the body.
  app.addContentTypeParser(Object.keys(FORMATS), (_request, payload, done) => done(null, payload))

  app.post(
    '/syncs',
    {
      schema: {
        operationId: 'startSync',
        summary: 'Bring existing members to Kit from a CSV or JSON Lines file (or preview it with dry_run=true)',
        description:
          'The body is the member file itself (text/csv or application/x-ndjson), read as it streams in. Each accepted member ' +
          'becomes a member.snapshot delivery through the same queue, budget and ordering guard as live events; live events go first.',
        tags: ['syncs'],
        security,
        querystring: Type.Object({ dry_run: Type.Optional(Type.Boolean({ description: 'Answer what the sync would do, without any Kit request' })) }, { additionalProperties: false }),
        response: {
          200: answer(SyncPlan, 'Dry run: what the sync would do, from what the plugin last wrote to Kit'),
          202: answer(Sync, 'The sync was started; its members are queued'),
          404: notFound,
          413: answer(ErrorBody, 'payload_too_large: the file is over SYNC_MAX_BYTES or SYNC_MAX_ROWS; nothing was queued'),
          415: answer(ErrorBody, 'unsupported_media_type: send text/csv or application/x-ndjson'),
          ...sessionErrors,
        },
      },
    },
    async (request, reply) => {
      const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
      const format = FORMATS[mediaType]
      if (!format || !(request.body instanceof Readable)) throw unsupported()
      const length = request.headers['content-length']
      const dryRun = request.query.dry_run === true
      const result = await syncs.start({
        communityId: request.user.communityId,
        format,
        body: request.body,
        contentLength: length === undefined ? null : Number(length),
        dryRun,
      })
      return reply.status(dryRun ? 200 : 202).send(result)
    },
  )

  app.get(
    '/syncs',
    {
      schema: {
        operationId: 'listSyncs',
        summary: 'The community\'s recent syncs, newest first',
        tags: ['syncs'],
        security,
        response: { 200: answer(SyncList, 'The 20 most recent syncs'), ...sessionErrors },
      },
    },
    async (request) => syncs.list(request.user.communityId),
  )

  app.get(
    '/syncs/:id',
    {
      config: { polled: true },
      schema: {
        operationId: 'getSync',
        summary: 'One sync\'s progress: counts, Kit requests and the estimated time left',
        tags: ['syncs'],
        security,
        params: SyncId,
        response: { 200: answer(Sync, 'The sync as it stands'), 404: notFound, ...sessionErrors },
      },
    },
    async (request) => syncs.get(request.user.communityId, request.params.id),
  )

  for (const verb of ['pause', 'resume', 'cancel'] as const) {
    app.post(
      `/syncs/:id/${verb}`,
      {
        schema: {
          operationId: `${verb}Sync`,
          summary: `${VERB_WORDS[verb]} a sync`,
          tags: ['syncs'],
          security,
          params: SyncId,
          response: { 200: answer(Sync, `The sync after ${verb}`), 404: notFound, ...sessionErrors },
        },
      },
      async (request) => syncs[verb](request.user.communityId, request.params.id),
    )
  }
}

export default routes
