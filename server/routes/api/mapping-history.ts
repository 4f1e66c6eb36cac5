import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody, MappingHistoryPage, Mappings } from '#shared/api.ts'
import { answer, security, sessionErrors } from './common.ts'

const Version = Type.Object(
  { version: Type.Integer({ minimum: 0, maximum: 2_147_483_647, description: 'A version number from the history' }) },
  { additionalProperties: false },
)
const unknownVersion = answer(ErrorBody, 'not_found: this community has no such version (never saved, or past retention)')

/** The mappings' history: every owner's save, with who, when and the change in words; any version can be restored. */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { mappings } = app.services
  const tags = ['mappings']

  app.get(
    '/mappings/history',
    {
      schema: {
        operationId: 'listMappingVersions',
        summary: 'The saved versions of the mappings, newest first',
        description:
          'Each save by an owner (PUT, PATCH or a restore) with who saved it, when and what it changed in words; version 0 is what was in place before the first save. Kept RETENTION_DAYS or the newest 100, whichever is more.',
        tags,
        security,
        querystring: Type.Object(
          {
            cursor: Type.Optional(Type.String({ maxLength: 100, description: 'next_cursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size, 50 by default' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: answer(MappingHistoryPage, 'One page of versions; next_cursor is null on the last page'), ...sessionErrors },
      },
    },
    async (request) => mappings.versions(request.user.communityId, request.query),
  )

  app.get(
    '/mappings/history/:version',
    {
      schema: {
        operationId: 'getMappingVersion',
        summary: 'The mapping document as one version saved it',
        tags,
        security,
        params: Version,
        response: { 200: answer(Mappings, 'The document of that version, with every event type'), ...sessionErrors, 404: unknownVersion },
      },
    },
    async (request) => mappings.version(request.user.communityId, request.params.version),
  )

  app.post(
    '/mappings/history/:version/restore',
    {
      schema: {
        operationId: 'restoreMappingVersion',
        summary: 'Save an earlier version again',
        description:
          'The version’s document is checked like a PUT and saved as a new version whose `restored_from` names it; the change in words compares it with the document it replaces.',
        tags,
        security,
        params: Version,
        response: {
          ...sessionErrors,
          200: answer(Mappings, 'The saved document, now in force'),
          400: answer(ErrorBody, 'invalid_mappings: the version no longer passes the checks a save must pass; the message names the part'),
          404: unknownVersion,
          409: answer(ErrorBody, '`mappings_changed`: the document kept changing while it was being restored; try again'),
        },
      },
    },
    async (request) => mappings.restore(request.user.communityId, request.params.version, request.user.userId),
  )
}

export default routes
