/**
 * *Connect with Kit*'s public pages, outside /api/v1 and without a session (both are top-level
 * pages: Kit's popup lands on the callback, Kit's App Store opens the install page). Registered
 * only when Connect with Kit is configured; rate limited per address like the other public routes.
 */
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { AppError } from '../lib/errors.ts'
import { INSTALL_TTL_MS, type CallbackQuery, type OAuthService } from '../services/oauth.ts'
import { callbackPage, installPage, type Page } from './oauth-pages.ts'

const param = Type.Optional(Type.String({ maxLength: 2000 }))
const send = (reply: FastifyReply, status: number, page: Page) => reply.status(status).headers(page.headers).send(page.html)

const routes: FastifyPluginAsync<{ oauth: OAuthService; panelOrigin: string }> = async (app, { oauth, panelOrigin }) => {
  const schema = (query: ReturnType<typeof Type.Object>) => ({ hide: true, querystring: query })

  app.get(
    '/oauth/kit/callback',
    { onRequest: app.intakeLimit, config: { secretQuery: true }, schema: schema(Type.Object({ code: param, state: param, error: param })) },
    async (request, reply) => {
      const outcome = await oauth.callback(request.query as CallbackQuery)
      return send(reply, outcome.ok ? 200 : 400, callbackPage(outcome, panelOrigin))
    },
  )

  app.get(
    '/oauth/kit/install',
    { onRequest: app.intakeLimit, schema: schema(Type.Object({ redirect: param })) },
    async (request, reply) => {
      try {
        const { code } = await oauth.install((request.query as { redirect?: string }).redirect)
        return send(reply, 200, installPage({ code, minutes: INSTALL_TTL_MS / 60_000 }))
      } catch (err) {
        if (!(err instanceof AppError)) throw err
        return send(reply, err.statusCode, installPage({ problem: err.message }))
      }
    },
  )
}

export default routes
