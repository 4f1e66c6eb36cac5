/**
 * The words for people of the "Kit → App Station" section: event types and failure codes. The codes
 * stay codes everywhere else; this is the one place they become sentences.
 */
import { PLATFORM_EVENT_TYPES, type PlatformEventType } from '#shared/platform-event-types.ts'

const TYPE_WORDS: Record<PlatformEventType, string> = {
  'kit.subscriber.unsubscribed': 'Unsubscribed in Kit',
  'kit.subscriber.bounced': 'Email bounced',
  'kit.subscriber.complained': 'Marked as spam',
  'kit.subscriber.updated': 'Name or email changed in Kit',
  'kit.connection.invalid': 'Kit stopped accepting the API key',
  'kit.deliveries.failing': 'Deliveries to Kit failing',
}

const isKnownType = (type: string): type is PlatformEventType => (PLATFORM_EVENT_TYPES as readonly string[]).includes(type)

/** An event type as an owner reads it; an unknown one as its code. */
export const typeWords = (type: string): string => (isKnownType(type) ? TYPE_WORDS[type] : type)

const HTTP_WORDS: Record<string, string> = {
  '401': 'App Station refused the signature (401): the secret the server signs with may not match App Station’s',
  '403': 'App Station refused the event (403)',
  '404': 'App Station has nothing at the configured address (404): check PLATFORM_EVENTS_URL',
  '410': 'App Station no longer takes events at the configured address (410)',
  '413': 'App Station found the event too large (413)',
  '429': 'App Station asked to slow down (429)',
}

/** What a failed attempt's code (`http_<status>`, `timeout`, `network`) means, in words. */
export function failureWords(code: string | null): string {
  if (code === null) return 'No reason was recorded'
  if (code === 'timeout') return 'App Station did not answer within 10 seconds'
  if (code === 'network') return 'App Station could not be reached (the connection failed or was dropped)'
  const status = /^http_(\d{3})$/.exec(code)?.[1]
  if (status === undefined) return `Failed (${code})`
  if (HTTP_WORDS[status]) return HTTP_WORDS[status]
  if (status.startsWith('5')) return `App Station had a problem of its own (${status})`
  if (status.startsWith('3'))
    return `App Station answered with a redirect (${status}), which does not count as received: use the final address`
  return `App Station refused the event (${status})`
}
