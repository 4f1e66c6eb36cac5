import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErasureList } from '#shared/api.ts'
import { answer, NoContent, notFound, security, sessionErrors } from './common.ts'

/** "Delete by hand in Kit": members erased from Kit as far as its API allows, until the owner deletes them there. */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { erasures } = app.services
  const tags = ['erasures']

  app.get(
    '/erasures',
    {
      schema: {
        operationId: 'listErasures',
        summary: 'List the members to delete by hand in Kit, newest first, each with the link to their page in Kit',
        description: "Kit's API cannot delete a subscriber: an erasing user.deleted mapping lists each person it erased here.",
        tags,
        security,
        response: { 200: answer(ErasureList, 'The erasures still to do; items is empty when there are none'), ...sessionErrors },
      },
    },
    async (request) => erasures.pending(request.user.communityId),
  )

  app.post(
    '/erasures/:member_id/done',
    {
      schema: {
        operationId: 'markErasureDone',
        summary: 'Say that a member was deleted in Kit: they leave the list',
        tags,
        security,
        params: Type.Object({ member_id: Type.String({ minLength: 1, maxLength: 100, description: 'The App Station member id' }) }),
        response: { 204: answer(NoContent, 'Done: the member left the list'), ...sessionErrors, 404: notFound },
      },
    },
    async (request, reply) => {
      await erasures.done(request.user.communityId, request.params.member_id)
      return reply.status(204).send(null)
    },
  )
}

export default routes
