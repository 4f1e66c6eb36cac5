import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CreateTagBody, KitCustomField, KitForm, KitSequence, KitTag } from '#shared/api.ts'
import { answer, security, sessionErrors } from './common.ts'

const items = <T extends Parameters<typeof Type.Array>[0]>(item: T, description: string) =>
  answer(Type.Object({ items: Type.Array(item) }), description)

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { catalogue } = app.services
  const tags = ['kit']
  const list = (operationId: string, what: string) => ({
    operationId,
    summary: `The connected Kit account’s ${what} (cached for 30 s)`,
    tags,
    security,
  })

  app.get(
    '/kit/tags',
    { schema: { ...list('listKitTags', 'tags'), response: { 200: items(KitTag, 'Every tag of the account'), ...sessionErrors } } },
    async (request) => ({ items: await catalogue.tags(request.user.communityId) }),
  )

  app.get(
    '/kit/custom-fields',
    {
      schema: {
        ...list('listKitCustomFields', 'custom fields'),
        response: { 200: items(KitCustomField, 'Every custom field of the account, with its key and label'), ...sessionErrors },
      },
    },
    async (request) => ({ items: await catalogue.customFields(request.user.communityId) }),
  )

  app.get(
    '/kit/forms',
    {
      schema: {
        ...list('listKitForms', 'forms'),
        response: { 200: items(KitForm, 'The account’s forms; archived ones are flagged'), ...sessionErrors },
      },
    },
    async (request) => ({ items: await catalogue.forms(request.user.communityId) }),
  )

  app.get(
    '/kit/sequences',
    {
      schema: {
        ...list('listKitSequences', 'sequences'),
        response: { 200: items(KitSequence, 'Every sequence of the account'), ...sessionErrors },
      },
    },
    async (request) => ({ items: await catalogue.sequences(request.user.communityId) }),
  )

  app.post(
    '/kit/tags',
    {
      schema: {
        operationId: 'createKitTag',
        summary: 'Create a tag in Kit, or get the existing tag of that name',
        tags,
        security,
        body: CreateTagBody,
        response: {
          200: answer(KitTag, 'Kit already had a tag of that name'),
          201: answer(KitTag, 'The tag was created'),
          ...sessionErrors,
        },
      },
    },
    async (request, reply) => {
      const { tag, created } = await catalogue.createTag(request.user.communityId, request.body.name)
      return reply.status(created ? 201 : 200).send(tag)
    },
  )
}

export default routes
