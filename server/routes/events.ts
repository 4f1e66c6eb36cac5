/**
 * Member event intake: Standard Webhooks signature on the raw body, the envelope
 * validated, and 202 only once the event and its delivery are committed.
 */
import type { FastifyPluginAsync } from 'fastify'
import { isEventType } from '../../shared/events.ts'
import { AppError } from '../lib/errors.ts'
import { NOT_CONNECTED_REASON } from '../services/connections.ts'
import { InvalidEvent, normaliseEmail, validateEnvelope } from '../pipeline/envelope.ts'
import { WebhookVerifier } from '../pipeline/signature.ts'

const invalidEvent = (message: string) => new AppError(400, 'invalid_event', message)

const routes: FastifyPluginAsync = async (app) => {
  const verifier = new WebhookVerifier(app.config.eventsSecrets)
  const { metrics } = app

  /** Events that will send nothing are recorded as skipped right away, with the reason. */
  const skipped = (type: string, communityId: string): { skippedReason?: string } => {
    if (!isEventType(type)) return { skippedReason: `Event type ${type} is not handled by the Kit integration.` }
    if (!app.services.connections.isConnected(communityId)) return { skippedReason: NOT_CONNECTED_REASON }
    return {}
  }

  app.addContentTypeParser(['application/json', 'application/cloudevents+json'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  )

  app.post('/events', { schema: { tags: ['events'], hide: false } }, async (request, reply) => {
    const raw = request.body
    if (!Buffer.isBuffer(raw)) {
      metrics.eventsReceived.inc({ status: 'invalid' })
      throw invalidEvent('Send the event as application/cloudevents+json or application/json.')
    }
    const header = (name: string) => {
      const value = request.headers[name]
      return typeof value === 'string' ? value : undefined
    }
    const webhookId = header('webhook-id')
    const signed = verifier.verify(raw, {
      id: webhookId,
      timestamp: header('webhook-timestamp'),
      signature: header('webhook-signature'),
    })
    if (!signed) {
      metrics.eventsReceived.inc({ status: 'unauthorized' })
      throw new AppError(
        401,
        'invalid_signature',
        'The webhook signature is missing, wrong or its timestamp is more than 5 minutes off.',
      )
    }
    const text = raw.toString('utf8')

    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      metrics.eventsReceived.inc({ status: 'invalid' })
      throw invalidEvent('The body is not valid JSON.')
    }
    let event
    try {
      event = validateEnvelope(body)
    } catch (err) {
      metrics.eventsReceived.inc({ status: 'invalid' })
      if (err instanceof InvalidEvent) throw invalidEvent(err.message)
      throw err
    }
    if (event.id !== webhookId) {
      metrics.eventsReceived.inc({ status: 'invalid' })
      throw invalidEvent('id must equal the webhook-id header')
    }

    const receivedAt = Date.now()
    const skip = skipped(event.type, event.communityid)
    const { accepted } = await app.pipeline.queue.enqueue({
      communityId: event.communityid,
      eventId: event.id,
      eventType: event.type,
      memberId: event.data.member.id,
      memberEmail: normaliseEmail(event.data.member.email),
      eventTime: event.time ? Date.parse(event.time) : receivedAt,
      payload: text,
      receivedAt,
      ...skip,
    })
    metrics.eventsReceived.inc({ status: accepted ? 'accepted' : 'duplicate' })
    if (!accepted) return reply.status(200).send({ status: 'duplicate', id: event.id })
    if (!skip.skippedReason) app.pipeline.consumer.notify()
    return reply.status(202).send({ status: 'accepted', id: event.id })
  })
}

export default routes
