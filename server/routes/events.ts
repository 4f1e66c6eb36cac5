/**
 * Member events over HTTP: the raw body goes to the pipeline's intake (signature, envelope,
 * dedupe, storage), and 202 comes only once the event and its delivery are committed.
 */
import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'
import { ErrorBody } from '#shared/api.ts'
import { EVENT_TYPES } from '#shared/events.ts'
import { AppError } from '../lib/errors.ts'
import type { RefusalCode } from '../pipeline/intake.ts'

const Str = (description: string, maxLength = 1000) => Type.String({ minLength: 1, maxLength, description })
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])

/**
 * The envelope as documentation only: the intake checks the signature on the raw bytes first and
 * then validates with `validateEnvelope`, whose messages name the field at fault.
 */
const MemberEventBody = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Str('Unique per community; must equal the webhook-id header', 200),
    source: Str('Who sent the event, e.g. https://appstation.example/communities/c_123'),
    type: Type.String({
      minLength: 1,
      maxLength: 200,
      description: `One of ${EVENT_TYPES.join(', ')}; other types are stored and recorded as skipped`,
    }),
    communityid: Str('The App Station community the member belongs to', 200),
    time: Type.Optional(
      Type.String({ format: 'date-time', description: 'When it happened (RFC 3339); orders events of one subscription or access level' }),
    ),
    subject: Type.Optional(Type.String()),
    data: Type.Object({
      member: Type.Object({
        id: Str('The member id', 200),
        email: Type.String({
          minLength: 3,
          maxLength: 320,
          description: 'The member email address; no control or bidirectional characters',
        }),
        first_name: Type.Optional(Nullable(Type.String({ description: 'No control characters' }))),
        fields: Type.Optional(
          Type.Union([
            Type.Record(Type.String(), Nullable(Type.String()), { description: 'mk_* profile fields; null clears a value' }),
            Type.Null(),
          ]),
        ),
      }),
      subscription: Type.Optional(
        Type.Object(
          { id: Str('The subscription id', 200), plan: Type.Optional(Type.String()), status: Type.Optional(Type.String()) },
          { description: 'Required for subscription.* events' },
        ),
      ),
      access: Type.Optional(Type.Object({ level: Str('The access level', 200) }, { description: 'Required for access.* events' })),
    }),
  },
  { description: 'A CloudEvents 1.0 member event' },
)

const WebhookHeaders = Type.Object({
  'webhook-id': Type.String({ description: 'The event id (the same on every redelivery)' }),
  'webhook-timestamp': Type.String({ description: 'Unix seconds when it was signed; refused when more than 5 minutes off' }),
  'webhook-signature': Type.String({
    description: 'Space-separated v1,<base64 HMAC-SHA256 of "id.timestamp.body"> signatures under EVENTS_SECRET; one valid one suffices',
  }),
})

const Accepted = Type.Object(
  { status: Type.Literal('accepted'), id: Type.String() },
  { description: 'Stored durably (committed and synced) and queued for Kit' },
)
const Duplicate = Type.Object(
  { status: Type.Literal('duplicate'), id: Type.String() },
  { description: 'This id was already received for this community; nothing changed' },
)
const refusal = (description: string) => ({ ...ErrorBody, description })

const eventSchema = {
  operationId: 'receiveEvent',
  summary: 'Receive a signed member event',
  description: 'Standard Webhooks signature over the raw body; nothing is stored for a refused event.',
  tags: ['events'],
  consumes: ['application/cloudevents+json', 'application/json'],
  headers: WebhookHeaders,
  body: MemberEventBody,
  response: {
    202: Accepted,
    200: Duplicate,
    400: refusal('invalid_event: the body is not a valid event; the message names the field'),
    401: refusal('invalid_signature: the signature is missing or wrong, or its timestamp more than 5 minutes off'),
    413: refusal('payload_too_large: the body is larger than 256 KiB'),
    415: refusal('unsupported_media_type: send application/cloudevents+json or application/json'),
    429: refusal('rate_limited: more events from this address than EVENTS_RATE_LIMIT a minute; retry after Retry-After'),
  },
}

/** The `kit_events_received_total` status of each refusal. */
const REFUSED_STATUS: Record<RefusalCode, string> = {
  invalid_signature: 'unauthorized',
  invalid_event: 'invalid',
  payload_too_large: 'invalid',
}

const routes: FastifyPluginAsync = async (app) => {
  const { metrics } = app

  app.addContentTypeParser(['application/json', 'application/cloudevents+json'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  )

  // The schema documents the intake; the intake validates, after the signature check (a missing
  // header is a 401, not a 400), so nothing here is compiled into a validator.
  app.post('/events', { schema: eventSchema, validatorCompiler: () => () => true, onRequest: app.intakeLimit }, async (request, reply) => {
    if (!Buffer.isBuffer(request.body)) {
      metrics.eventsReceived.inc({ status: 'invalid' })
      throw new AppError(400, 'invalid_event', 'Send the event as application/cloudevents+json or application/json.')
    }
    const result = await app.pipeline.accept({ raw: request.body, headers: request.headers })
    metrics.eventsReceived.inc({ status: result.outcome === 'refused' ? REFUSED_STATUS[result.code] : result.outcome })
    if (result.outcome === 'refused') throw result.error
    return reply.status(result.outcome === 'accepted' ? 202 : 200).send({ status: result.outcome, id: result.id })
  })
}

export default routes
