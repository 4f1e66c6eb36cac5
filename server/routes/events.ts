/**
 * Member event intake (CONTRACT §4): Standard Webhooks signature on the raw body, the envelope
 * validated, and 202 only once the event and its delivery are committed.
 */
import type { FastifyPluginAsync } from 'fastify'
import { Webhook } from 'standardwebhooks'
import { isEventType } from '../../shared/events.ts'
import { AppError } from '../lib/errors.ts'
import { InvalidEvent, normaliseEmail, validateEnvelope } from '../pipeline/envelope.ts'

const invalidEvent = (message: string) => new AppError(400, 'invalid_event', message)

const routes: FastifyPluginAsync = async (app) => {
  const verifiers = app.config.eventsSecrets.map((secret) => new Webhook(secret))
  const { metrics } = app

  app.addContentTypeParser(['application/json', 'application/cloudevents+json'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  )

  app.post('/events', { schema: { tags: ['events'], hide: false } }, async (request, reply) => {
    const raw = request.body
    if (typeof raw !== 'string') {
      metrics.eventsReceived.inc({ status: 'invalid' })
      throw invalidEvent('Send the event as application/cloudevents+json or application/json.')
    }
    const headers = {
      'webhook-id': String(request.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(request.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(request.headers['webhook-signature'] ?? ''),
    }
    if (!verifiers.some((v) => verifies(v, raw, headers))) {
      metrics.eventsReceived.inc({ status: 'unauthorized' })
      throw new AppError(
        401,
        'invalid_signature',
        'The webhook signature is missing, wrong or its timestamp is more than 5 minutes off.',
      )
    }

    let body: unknown
    try {
      body = JSON.parse(raw)
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
    if (event.id !== headers['webhook-id']) {
      metrics.eventsReceived.inc({ status: 'invalid' })
      throw invalidEvent('id must equal the webhook-id header')
    }

    const receivedAt = Date.now()
    const { accepted } = app.pipeline.queue.enqueue({
      communityId: event.communityid,
      eventId: event.id,
      eventType: event.type,
      memberId: event.data.member.id,
      memberEmail: normaliseEmail(event.data.member.email),
      eventTime: event.time ? Date.parse(event.time) : receivedAt,
      payload: raw,
      receivedAt,
      ...(isEventType(event.type) ? {} : { skippedReason: `Event type ${event.type} is not handled by the Kit integration.` }),
    })
    metrics.eventsReceived.inc({ status: accepted ? 'accepted' : 'duplicate' })
    if (!accepted) return reply.status(200).send({ status: 'duplicate', id: event.id })
    app.pipeline.consumer.notify()
    return reply.status(202).send({ status: 'accepted', id: event.id })
  })
}

function verifies(verifier: Webhook, raw: string, headers: Record<string, string>): boolean {
  try {
    verifier.verify(raw, headers, { jsonParse: false })
    return true
  } catch {
    return false
  }
}

export default routes
