import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CreateTagBody, KitCustomField, KitForm, KitSequence, KitTag } from '../../../shared/api.ts'
import { security, sessionErrors } from './common.ts'

const items = <T extends Parameters<typeof Type.Array>[0]>(item: T) => Type.Object({ items: Type.Array(item) })

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { catalogue } = app.services
  const tags = ['kit']

  app.get('/kit/tags', { schema: { tags, security, response: { 200: items(KitTag), ...sessionErrors } } }, async (request) => ({
    items: await catalogue.tags(request.user.communityId),
  }))

  app.get(
    '/kit/custom-fields',
    { schema: { tags, security, response: { 200: items(KitCustomField), ...sessionErrors } } },
    async (request) => ({ items: await catalogue.customFields(request.user.communityId) }),
  )

  app.get('/kit/forms', { schema: { tags, security, response: { 200: items(KitForm), ...sessionErrors } } }, async (request) => ({
    items: await catalogue.forms(request.user.communityId),
  }))

  app.get(
    '/kit/sequences',
    { schema: { tags, security, response: { 200: items(KitSequence), ...sessionErrors } } },
    async (request) => ({ items: await catalogue.sequences(request.user.communityId) }),
  )

  app.post(
    '/kit/tags',
    { schema: { tags, security, body: CreateTagBody, response: { 200: KitTag, 201: KitTag, ...sessionErrors } } },
    async (request, reply) => {
      const { tag, created } = await catalogue.createTag(request.user.communityId, request.body.name)
      return reply.status(created ? 201 : 200).send(tag)
    },
  )
}

export default routes
