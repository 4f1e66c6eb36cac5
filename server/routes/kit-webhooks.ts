/**
 * `POST /kit/webhooks/:token`: Kit's webhook deliveries (unsigned, so the unguessable token in the
 * path names the connection, and the subscriber is re-read from Kit before anything is believed).
 * Outside /api/v1, no session; rate limited per address like /events; answered at once.
 */
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync } from 'fastify'
import { AppError } from '../lib/errors.ts'

/** Kit's legacy body is one subscriber: far below this. */
export const KIT_WEBHOOK_MAX_BYTES = 16 * 1024

const Refusal = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) })

const routes: FastifyPluginAsync = async (app) => {
  app.post(
    '/kit/webhooks/:token',
    {
      bodyLimit: KIT_WEBHOOK_MAX_BYTES,
      onRequest: app.intakeLimit,
      schema: {
        hide: true,
        params: Type.Object({ token: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: Type.Object({ status: Type.Literal('received') }), 404: Refusal, 413: Refusal, 429: Refusal },
      },
    },
    async (request) => {
      const { token } = request.params as { token: string }
      if (!(await app.kitWatch.webhook(token, request.body)))
        throw new AppError(404, 'not_found', 'No Kit webhook is registered at this address.')
      return { status: 'received' as const }
    },
  )
}

export default routes
