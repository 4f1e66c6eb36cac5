/**
 * What the local App Station's receiver (`/dev/platform-events`, development only) lists at
 * `/dev/api/platform-events`: the server route fills it, the dev page reads it. Defined once here.
 */

/** One event the receiver took, once per event id. */
export interface ReceivedPlatformEvent {
  /** The `webhook-id`: the event's id, the same on every attempt. */
  id: string
  type: string | null
  communityid: string | null
  subject: string | null
  /** The CloudEvent as received. */
  event: Record<string, unknown>
  /** How many signed deliveries of this id arrived: more than one is a repeat, not a new event. */
  deliveries: number
  first_received_at: string
  last_received_at: string
}

/** The receiver's listing: whether the server sends events at all, where to, and what arrived (newest first). */
export interface ReceivedPlatformEvents {
  configured: boolean
  url: string | null
  items: ReceivedPlatformEvent[]
}
