/** The kinds of events sent to the platform (Kit → App Station), without the schema library, so the panel can read them too. */

/** The states a person reaches in Kit, each reported once per member. */
export const SUBSCRIBER_STATE_TYPES = ['kit.subscriber.unsubscribed', 'kit.subscriber.bounced', 'kit.subscriber.complained'] as const

export const PLATFORM_EVENT_TYPES = [
  ...SUBSCRIBER_STATE_TYPES,
  'kit.subscriber.updated',
  'kit.connection.invalid',
  'kit.deliveries.failing',
] as const
export type PlatformEventType = (typeof PLATFORM_EVENT_TYPES)[number]
