/**
 * The one way a member event gets in, whatever carried it (the HTTP route, the event bus): the
 * Standard Webhooks signature checked on the raw bytes, the envelope validated, the event
 * deduplicated by community and id and stored with its delivery, answered only after the commit.
 */
import { isEventType } from '#shared/events.ts'
import { AppError } from '../lib/errors.ts'
import { reasonWords, type ReasonCode } from '../core/reasons.ts'
import { InvalidEvent, normaliseEmail, validateEnvelope, type MemberEvent } from '../core/envelope.ts'
import type { DeliveryQueue } from '../core/queue.ts'
import { WebhookVerifier } from './signature.ts'

/** The largest event accepted, in bytes, on every path. */
export const MAX_EVENT_BYTES = 256 * 1024

export type RefusalCode = 'invalid_signature' | 'invalid_event' | 'payload_too_large'

export interface IntakeInput {
  /** The exact bytes that were signed. */
  raw: Buffer
  /** Header values by lower-case name; only single string values count. */
  headers: Readonly<Record<string, string | string[] | undefined>>
  /**
   * The moment the signature's timestamp must be within 5 minutes of (epoch ms): now for a request,
   * the time the bus stored the message for a message read later from a stream.
   */
  signedNear?: number
}

export type IntakeResult =
  { outcome: 'accepted'; id: string } | { outcome: 'duplicate'; id: string } | { outcome: 'refused'; code: RefusalCode; error: AppError }

export interface IntakeOptions {
  queue: DeliveryQueue
  eventsSecrets: string[]
  isConnected: (communityId: string) => Promise<boolean>
  /** New work is waiting: wake the consumer. */
  notify: () => void
  now?: () => number
}

const refused = (status: number, code: RefusalCode, message: string): IntakeResult => ({
  outcome: 'refused',
  code,
  error: new AppError(status, code, message),
})
const invalidEvent = (message: string) => refused(400, 'invalid_event', message)

export class EventIntake {
  private readonly verifier: WebhookVerifier
  private readonly now: () => number

  constructor(private readonly o: IntakeOptions) {
    this.now = o.now ?? Date.now
    this.verifier = new WebhookVerifier(o.eventsSecrets, this.now)
  }

  /**
   * Checks and stores one event. Resolves once it is committed (accepted), known already
   * (duplicate) or refused with nothing stored; rejects only when storage fails, so the caller can
   * let the sender try again.
   */
  async accept({ raw, headers, signedNear }: IntakeInput): Promise<IntakeResult> {
    const header = (name: string) => {
      const value = headers[name]
      return typeof value === 'string' ? value : undefined
    }
    if (raw.length > MAX_EVENT_BYTES) {
      return refused(
        413,
        'payload_too_large',
        `The event is larger than ${MAX_EVENT_BYTES / 1024} KiB; send member files through a sync instead.`,
      )
    }
    const webhookId = header('webhook-id')
    const signature = { id: webhookId, timestamp: header('webhook-timestamp'), signature: header('webhook-signature') }
    if (!this.verifier.verify(raw, signature, signedNear)) {
      return refused(401, 'invalid_signature', 'The webhook signature is missing, wrong or its timestamp is more than 5 minutes off.')
    }
    const text = raw.toString('utf8')
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      return invalidEvent('The body is not valid JSON.')
    }
    let event: MemberEvent
    try {
      event = validateEnvelope(body)
    } catch (err) {
      if (err instanceof InvalidEvent) return invalidEvent(err.message)
      throw err
    }
    if (event.id !== webhookId) return invalidEvent('id must equal the webhook-id header')

    const receivedAt = this.now()
    const skipped = await this.skippedReason(event)
    const { accepted } = await this.o.queue.enqueue({
      communityId: event.communityid,
      eventId: event.id,
      eventType: event.type,
      memberId: event.data.member.id,
      memberEmail: normaliseEmail(event.data.member.email),
      eventTime: event.time ? Date.parse(event.time) : receivedAt,
      payload: text,
      receivedAt,
      ...(skipped ? { skippedReason: reasonWords(skipped, { eventType: event.type }), reason: skipped } : {}),
    })
    if (!accepted) return { outcome: 'duplicate', id: event.id }
    if (!skipped) this.o.notify()
    return { outcome: 'accepted', id: event.id }
  }

  /** Events that will send nothing are recorded as skipped right away, with the reason. */
  private async skippedReason(event: MemberEvent): Promise<ReasonCode | undefined> {
    if (!isEventType(event.type)) return 'unknown_event_type'
    if (!(await this.o.isConnected(event.communityid))) return 'not_connected'
    return undefined
  }
}
