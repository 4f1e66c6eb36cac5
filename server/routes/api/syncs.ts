/**
 * Initial syncs. The member file is not parsed by Fastify: its stream goes to the sync service,
 * which reads it line by line and enforces its own size limit (SYNC_MAX_BYTES), so the settings
 * API's small body limit stays in force everywhere else. The upload has no whole-request deadline,
 * only a minimum pace (SYNC_UPLOAD_*): a large file over a slow link is not cut off.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Readable } from 'node:stream'
import { Type } from 'typebox'
import { ErrorBody, Sync, SyncFileError, SyncList, SyncPlan } from '#shared/api.ts'
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
  new AppError(
    415,
    'unsupported_media_type',
    'Send the member file as text/csv (a header line, then one member a line) or application/x-ndjson (one JSON object a line).',
  )

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { syncs } = app.pipeline
  const SyncId = Type.Object({ id: Type.String({ maxLength: 100 }) })

  // Scoped to these routes: the request stream itself is the body.
  app.addContentTypeParser(Object.keys(FORMATS), (_request, payload, done) => done(null, payload))

  app.post(
    '/syncs',
    {
      // Judged by its progress instead of the whole-request timeout (see plugins/upload-pace.ts).
      onRequest: (request, reply) => app.uploadPace.watch(request, reply),
      onSend: (request, reply) => app.uploadPace.closeIfUnread(request, reply),
      schema: {
        operationId: 'startSync',
        summary: 'Bring existing members to Kit from a CSV or JSON Lines file (or preview it with dry_run=true)',
        description:
          'The body is the member file itself (text/csv or application/x-ndjson), read as it streams in. Each accepted member ' +
          'becomes a member.snapshot delivery through the same queue, budget and ordering guard as live events; live events go first.',
        tags: ['syncs'],
        security,
        querystring: Type.Object(
          {
            dry_run: Type.Optional(Type.Boolean({ description: 'Answer what the sync would do, without any Kit request' })),
            columns: Type.Optional(
              Type.String({
                maxLength: 8192,
                description:
                  'The column mapping, as JSON: file column (as the file spells it) → member field (email, member_id, first_name, ' +
                  'subscription_plan, subscription_status, access_level or an mk_* field), or null. Columns it does not name are ignored. ' +
                  "Without it: the mapping remembered from the community's last import, else columns named like a member field. " +
                  'An accepted import remembers the mapping it used.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: answer(SyncPlan, 'Dry run: what the sync would do, from what the plugin last wrote to Kit'),
          202: answer(Sync, 'The sync was started; its members are queued'),
          ...sessionErrors,
          400: answer(
            SyncFileError,
            'The file is refused whole, nothing queued: malformed_file (names the line), missing_column or invalid_column_mapping ' +
              "(with the file's columns and the mapping used), empty_file, or invalid_request",
          ),
          404: notFound,
          413: answer(ErrorBody, 'payload_too_large: the file is over SYNC_MAX_BYTES or SYNC_MAX_ROWS; nothing was queued'),
          415: answer(ErrorBody, 'unsupported_media_type: send text/csv or application/x-ndjson'),
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
        columns: request.query.columns ?? null,
      })
      return reply.status(dryRun ? 200 : 202).send(result)
    },
  )

  app.get(
    '/syncs',
    {
      schema: {
        operationId: 'listSyncs',
        summary: "The community's recent syncs, newest first",
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
        summary: "One sync's progress: counts, Kit requests and the estimated time left",
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
