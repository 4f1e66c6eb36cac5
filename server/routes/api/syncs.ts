/**
 * Initial syncs. The member file is not parsed by Fastify: its stream goes to the sync service,
 * which reads it line by line and enforces its own size limit (SYNC_MAX_BYTES), so the settings
 * API's small body limit stays in force everywhere else.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Readable } from 'node:stream'
import { Type } from 'typebox'
import { ErrorBody, Sync, SyncList, SyncPlan } from '../../../shared/api.ts'
import { AppError } from '../../lib/errors.ts'
import type { SyncFormat } from '../../pipeline/sync-input.ts'
import { security, sessionErrors } from './common.ts'

const FORMATS: Record<string, SyncFormat> = {
  'text/csv': 'csv',
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
}

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
        tags: ['syncs'],
        security,
        querystring: Type.Object({ dry_run: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: SyncPlan, 202: Sync, 404: ErrorBody, 413: ErrorBody, 415: ErrorBody, ...sessionErrors },
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
    { schema: { tags: ['syncs'], security, response: { 200: SyncList, ...sessionErrors } } },
    async (request) => syncs.list(request.user.communityId),
  )

  app.get(
    '/syncs/:id',
    { schema: { tags: ['syncs'], security, params: SyncId, response: { 200: Sync, 404: ErrorBody, ...sessionErrors } } },
    async (request) => syncs.get(request.user.communityId, request.params.id),
  )

  for (const verb of ['pause', 'resume', 'cancel'] as const) {
    app.post(
      `/syncs/:id/${verb}`,
      { schema: { tags: ['syncs'], security, params: SyncId, response: { 200: Sync, 404: ErrorBody, ...sessionErrors } } },
      async (request) => syncs[verb](request.user.communityId, request.params.id),
    )
  }
}

export default routes
