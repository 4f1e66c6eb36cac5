/**
 * The local App Station's receiver for the events the plugin tells the platform (contract §7), so
 * the loop can be tried offline: point PLATFORM_EVENTS_URL at `/dev/platform-events` (as
 * `npm run start:offline` does), and the dev page lists what arrived. It checks the Standard
 * Webhooks signature with PLATFORM_EVENTS_SECRET as App Station would, and keeps the last
 * RECEIVED_KEPT events in memory, once per event id with how often that id came.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ReceivedPlatformEvent, ReceivedPlatformEvents } from '#shared/dev-platform-events.ts'
import { decodeWebhookSecrets } from '../config-schema.ts'
import { AppError } from '../lib/errors.ts'
import { WebhookVerifier } from '../pipeline/signature.ts'

export const RECEIVED_KEPT = 200

const text = (value: unknown) => (typeof value === 'string' ? value : null)
const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const target = app.config.platformEvents
  const verifier = target ? new WebhookVerifier(decodeWebhookSecrets(target.secret) ?? []) : null
  /** Newest first, at most RECEIVED_KEPT; this app's own, gone on restart. */
  let received: ReceivedPlatformEvent[] = []

  app.addContentTypeParser('application/cloudevents+json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

  app.post('/dev/platform-events', { schema: { hide: true } }, async (request, reply) => {
    if (!verifier) {
      throw new AppError(
        409,
        'platform_events_not_configured',
        'Set PLATFORM_EVENTS_URL and PLATFORM_EVENTS_SECRET to receive events here.',
      )
    }
    const raw = request.body
    if (!Buffer.isBuffer(raw)) throw new AppError(415, 'unsupported_media_type', 'Send the event as application/cloudevents+json.')
    const id = header(request.headers['webhook-id'])
    const signed = verifier.verify(raw, {
      id,
      timestamp: header(request.headers['webhook-timestamp']),
      signature: header(request.headers['webhook-signature']),
    })
    if (!signed || !id) throw new AppError(401, 'invalid_signature', 'The webhook signature does not match PLATFORM_EVENTS_SECRET.')
    let event: Record<string, unknown>
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'))
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('not an object')
      event = parsed as Record<string, unknown>
    } catch {
      throw new AppError(400, 'invalid_event', 'The body is not a JSON object.')
    }
    const now = new Date().toISOString()
    const before = received.find((r) => r.id === id)
    const entry: ReceivedPlatformEvent = before
      ? { ...before, event, deliveries: before.deliveries + 1, last_received_at: now }
      : {
          id,
          type: text(event.type),
          communityid: text(event.communityid),
          subject: text(event.subject),
          event,
          deliveries: 1,
          first_received_at: now,
          last_received_at: now,
        }
    received = [entry, ...received.filter((r) => r.id !== id)].slice(0, RECEIVED_KEPT)
    request.log.info({ platformEventId: id, repeat: Boolean(before) }, 'dev receiver took a platform event')
    return reply.status(204).send()
  })

  app.get('/dev/api/platform-events', { schema: { hide: true } }, async (): Promise<ReceivedPlatformEvents> => ({
    configured: target !== null,
    url: target?.url ?? null,
    items: received,
  }))

  app.delete('/dev/api/platform-events', { schema: { hide: true } }, async (_request, reply) => {
    received = []
    return reply.status(204).send()
  })
}

export default routes
