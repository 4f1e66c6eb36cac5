/**
 * Deliveries for queue, consumer and storage tests: each call gives unique ids, every field can be
 * overridden, and the payload is a real member event (see `makeEvent`).
 */
import type Database from 'better-sqlite3'
import type { InternalStatus, NewDelivery, QueuedDelivery } from '../../server/core/queue.ts'
import { makeEvent } from './events.ts'

let counter = 0

/** What intake hands the queue for one new member event. */
export function newDelivery(overrides: Partial<NewDelivery> = {}): NewDelivery {
  counter += 1
  const communityId = overrides.communityId ?? 'c_alpha'
  const memberId = overrides.memberId ?? `m_dlv_${counter}`
  const memberEmail = overrides.memberEmail ?? `${memberId}@example.com`
  const eventType = overrides.eventType ?? 'user.signed_up'
  const event = makeEvent({
    communityId,
    memberId,
    email: memberEmail,
    type: eventType,
    ...(overrides.eventId ? { id: overrides.eventId } : {}),
  })
  const now = Date.now()
  return {
    communityId,
    eventId: event.id as string,
    eventType,
    memberId,
    memberEmail,
    eventTime: Date.parse(event.time as string),
    payload: JSON.stringify(event),
    receivedAt: now,
    ...overrides,
  }
}

/** A delivery as the queue hands it to the consumer after a claim. */
export function queuedDelivery(overrides: Partial<QueuedDelivery> = {}): QueuedDelivery {
  const base = newDelivery(overrides)
  return { seq: counter, id: `dlv_${counter}`, attempts: 0, kitRequests: 0, ...base, ...overrides }
}

export interface StoredDeliveryInput extends Partial<NewDelivery> {
  status?: InternalStatus
  lastError?: string | null
  /** Epoch milliseconds; the time it was received unless given. */
  nextAttemptAt?: number
  /** Epoch milliseconds of the last change; the time it was received unless given. */
  updatedAt?: number
}

/**
 * Writes an event and its delivery straight into an app's SQLite database, in any state (an old
 * finished one, a held one) without running the pipeline; answers the event's and delivery's ids.
 */
export function storeDelivery(sqlite: Database.Database, input: StoredDeliveryInput = {}): { eventId: string; deliveryId: string } {
  const { status = 'pending', lastError = null, reason = null, nextAttemptAt, updatedAt, ...fields } = input
  const d = newDelivery(fields)
  const deliveryId = `dlv_${d.eventId}`
  sqlite
    .prepare(
      `INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(d.communityId, d.eventId, d.eventType, d.memberId, d.memberEmail, d.eventTime, d.payload, d.receivedAt)
  sqlite
    .prepare(
      `INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status, last_error, reason,
         next_attempt_at, received_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      deliveryId,
      d.communityId,
      d.eventId,
      d.eventType,
      d.memberId,
      d.memberEmail,
      d.eventTime,
      status,
      lastError,
      reason,
      nextAttemptAt ?? d.receivedAt,
      d.receivedAt,
      new Date(d.receivedAt).toISOString(),
      new Date(updatedAt ?? d.receivedAt).toISOString(),
    )
  return { eventId: d.eventId, deliveryId }
}
