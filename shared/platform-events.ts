/**
 * The settings API's shapes for events to the platform (Kit → App Station, contract §7): what the
 * panel's "Kit → App Station" section reads. Defined once, for the server's validation and the
 * panel's types.
 */
import { Type, type Static } from 'typebox'
import { PLATFORM_EVENT_TYPES } from './platform-event-types.ts'

// The event types are kept apart from the schemas so the panel reads them without the schema library.
export { PLATFORM_EVENT_TYPES, SUBSCRIBER_STATE_TYPES, type PlatformEventType } from './platform-event-types.ts'

export const PlatformEventState = Type.Union([Type.Literal('pending'), Type.Literal('sent'), Type.Literal('failed')], {
  description:
    'pending: waiting for its first or next attempt; sent: the platform answered 2xx; failed: retried for 72 hours without success',
})
export type PlatformEventState = Static<typeof PlatformEventState>

const Time = Type.String({ format: 'date-time' })
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

export const PlatformEvent = Type.Object({
  id: Type.String({ description: 'kitevt_…, the CloudEvent id and webhook-id, the same on every attempt' }),
  type: Type.String({ description: PLATFORM_EVENT_TYPES.join(', ') }),
  state: PlatformEventState,
  attempts: Type.Integer({ minimum: 0 }),
  last_error: Nullable(Type.String({ description: 'Code of the last failed attempt: http_<status>, timeout or network' })),
  member: Nullable(Type.Object({ id: Type.String(), email: Type.String() })),
  /** The CloudEvent's `data`, as sent. */
  data: Type.Record(Type.String(), Type.Unknown()),
  observed_at: Time,
  created_at: Time,
  sent_at: Nullable(Time),
  next_attempt_at: Nullable(Time),
})
export type PlatformEvent = Static<typeof PlatformEvent>

export const PlatformEventPage = Type.Object({
  items: Type.Array(PlatformEvent),
  next_cursor: Nullable(Type.String()),
})
export type PlatformEventPage = Static<typeof PlatformEventPage>

export const PlatformEventSummary = Type.Object({
  configured: Type.Boolean({
    description: 'PLATFORM_EVENTS_URL and PLATFORM_EVENTS_SECRET are set: events are sent (otherwise none is stored or sent)',
  }),
  since: Time,
  counts: Type.Array(Type.Object({ type: Type.String(), state: PlatformEventState, count: Type.Integer({ minimum: 0 }) })),
})
export type PlatformEventSummary = Static<typeof PlatformEventSummary>
