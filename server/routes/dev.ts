/**
 * The local App Station's API: session tokens minted with the configured secret, and sample member
 * events signed like the platform signs them. Registered only with KIT_DEV_HOST=1, which the
 * configuration allows only outside production, on loopback and with generated secrets.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { randomUUID } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { Type } from 'typebox'
import type { SessionClaims } from '../plugins/auth.ts'

const TOKEN_LIFETIME_S = 120

const Member = Type.Object({
  id: Type.String({ minLength: 1 }),
  email: Type.String({ minLength: 1 }),
  first_name: Type.Optional(Type.String()),
  fields: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]))),
})

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app

  app.get('/dev/api/info', { schema: { hide: true } }, async () => ({
    origin: config.origin,
    plugin_id: config.pluginId,
    kit_api_url: config.kitApiUrl,
  }))

  app.post(
    '/dev/api/token',
    {
      schema: {
        hide: true,
        body: Type.Object({
          cid: Type.String({ minLength: 1, maxLength: 100 }),
          roles: Type.Array(Type.String(), { maxItems: 10 }),
          sub: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
        }),
      },
    },
    async (request) => {
      const claims = { sub: request.body.sub ?? 'u_dev_owner', cid: request.body.cid, roles: request.body.roles, jti: randomUUID() }
      // iss, aud, iat and exp are added by the signer configured in the auth plugin.
      const token = app.jwt.sign(claims as unknown as SessionClaims, { expiresIn: `${TOKEN_LIFETIME_S}s` })
      return { token, expires_in: TOKEN_LIFETIME_S }
    },
  )

  app.post(
    '/dev/api/simulate',
    {
      schema: {
        hide: true,
        body: Type.Object({
          cid: Type.String({ minLength: 1, maxLength: 100 }),
          type: Type.String({ minLength: 1, maxLength: 100 }),
          member: Member,
          subscription: Type.Optional(Type.Object({ id: Type.String(), plan: Type.String(), status: Type.String() })),
          access: Type.Optional(Type.Object({ level: Type.String() })),
        }),
      },
    },
    async (request) => {
      const { cid, type, member, subscription, access } = request.body
      const id = `evt_dev_${randomUUID().replace(/-/g, '')}`
      const event = {
        specversion: '1.0',
        id,
        source: `${config.origin}/communities/${cid}`,
        type,
        time: new Date().toISOString(),
        communityid: cid,
        subject: `members/${member.id}`,
        data: { member, ...(subscription ? { subscription } : {}), ...(access ? { access } : {}) },
      }
      const body = JSON.stringify(event)
      const timestamp = new Date()
      const secret = config.eventsSecrets[0] as string
      const signature = new Webhook(secret).sign(id, timestamp, body)
      const answer = await app.inject({
        method: 'POST',
        url: '/events',
        payload: body,
        headers: {
          'content-type': 'application/cloudevents+json',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': signature,
        },
      })
      return { status: answer.statusCode, body: answer.json<unknown>() }
    },
  )
}

export default routes
