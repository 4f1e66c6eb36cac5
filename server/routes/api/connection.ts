import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Connection, ConnectionTestResult, ErrorBody, OAuthStart, OAuthStartBody, PutConnectionBody } from '#shared/api.ts'
import { answer, NoContent, security, sessionErrors } from './common.ts'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { connections, catalogue, oauth } = app.services

  app.get(
    '/connection',
    {
      schema: {
        operationId: 'getConnection',
        summary: 'The community’s Kit connection: status, key hint and account',
        tags: ['connection'],
        security,
        response: { 200: answer(Connection, 'The connection; status disconnected when no key is saved'), ...sessionErrors },
      },
    },
    async (request) => connections.get(request.user.communityId),
  )

  app.put(
    '/connection',
    {
      onRequest: app.apiLimits.kitKeyChecks,
      schema: {
        operationId: 'connect',
        summary: 'Check a Kit API key with Kit, then save it (replacing any saved key)',
        tags: ['connection'],
        security,
        body: PutConnectionBody,
        response: {
          200: answer(Connection, 'Kit accepted the key; it is saved and the connection is connected'),
          422: answer(ErrorBody, 'kit_rejected_key: Kit did not accept the key; nothing was saved'),
          ...sessionErrors,
        },
      },
    },
    async (request) => connections.connect(request.user.communityId, request.body.api_key),
  )

  app.delete(
    '/connection',
    {
      schema: {
        operationId: 'disconnect',
        summary: 'Delete the saved Kit key; members stop syncing',
        tags: ['connection'],
        security,
        response: { 204: answer(NoContent, 'Disconnected (also when nothing was connected)'), ...sessionErrors },
      },
    },
    async (request, reply) => {
      await connections.disconnect(request.user.communityId)
      catalogue.invalidate(request.user.communityId)
      return reply.status(204).send(null)
    },
  )

  if (oauth) {
    app.post(
      '/connection/oauth/start',
      {
        schema: {
          operationId: 'startKitOAuth',
          summary: 'Start Connect with Kit: the address of Kit’s consent page, for the panel to open in a popup',
          tags: ['connection'],
          security,
          body: OAuthStartBody,
          response: {
            200: answer(OAuthStart, 'Kit’s consent page for a new authorization by this session, valid for 10 minutes and used once'),
            422: answer(ErrorBody, 'install_code_unknown: the install code is unknown, used or expired'),
            ...sessionErrors,
          },
        },
      },
      async (request) => oauth.start(request.user, request.body.install_code),
    )
  }

  app.post(
    '/connection/test',
    {
      onRequest: app.apiLimits.kitKeyChecks,
      schema: {
        operationId: 'testConnection',
        summary: 'Ask Kit for the account and check every tag, form, sequence and field the mappings use',
        tags: ['connection'],
        security,
        response: {
          200: answer(
            ConnectionTestResult,
            'ok true: the account, the round trip and one check per mapped Kit object; ok false: why Kit could not be used (kit_unreachable, kit_rate_limited, connection_invalid)',
          ),
          ...sessionErrors,
        },
      },
    },
    async (request) => catalogue.test(request.user.communityId),
  )
}

export default routes
