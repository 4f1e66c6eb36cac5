import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ConsentSetting, PutConsentBody } from '#shared/api.ts'
import { answer, security, sessionErrors } from './common.ts'

const setting = answer(ConsentSetting, 'Who may become a Kit subscriber; `updated_at` is null until the community saves a choice.')

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { consent } = app.services
  const tags = ['consent']

  app.get(
    '/consent',
    {
      schema: {
        operationId: 'getConsent',
        summary: 'The consent setting',
        description:
          '`all_members` (the default): every member may become a Kit subscriber. `marketing_consent`: only members whose events carry `data.member.consent.marketing: true`, and those already in Kit through the plugin. Either way, `marketing: false` unsubscribes the member.',
        tags,
        security,
        response: { ...sessionErrors, 200: setting },
      },
    },
    async (request) => consent.get(request.user.communityId),
  )

  app.put(
    '/consent',
    {
      schema: {
        operationId: 'setConsent',
        summary: 'Choose who may become a Kit subscriber',
        description: 'Applies to every delivery from now on, including those already waiting, and to import previews.',
        tags,
        security,
        body: PutConsentBody,
        response: { ...sessionErrors, 200: setting },
      },
    },
    async (request) => consent.set(request.user.communityId, request.body.mode),
  )
}

export default routes
