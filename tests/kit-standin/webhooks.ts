/**
 * Kit's legacy webhooks (`/v4/webhooks`): one registration per event (and per event parameter),
 * delivered as a POST of `{"subscriber": {...}}` to the target, unsigned, once, never retried.
 * Registration answers follow Kit's reference: the event comes back by its short name
 * (`subscriber_unsubscribe`), with `initiator_value: null` when the event takes no parameter.
 */
import { KitError, type JsonObject } from './errors.ts'

/** Every event Kit's reference lists, with the parameter it requires (null: none). */
export const WEBHOOK_EVENTS: Readonly<Record<string, string | null>> = {
  'subscriber.subscriber_activate': null,
  'subscriber.subscriber_unsubscribe': null,
  'subscriber.subscriber_bounce': null,
  'subscriber.subscriber_complain': null,
  'subscriber.form_subscribe': 'form_id',
  'subscriber.course_subscribe': 'sequence_id',
  'subscriber.course_complete': 'sequence_id',
  'subscriber.link_click': 'initiator_value',
  'subscriber.product_purchase': 'product_id',
  'subscriber.tag_add': 'tag_id',
  'subscriber.tag_remove': 'tag_id',
  'purchase.purchase_create': null,
  'custom_field.field_created': null,
  'custom_field.field_deleted': null,
  'custom_field.field_value_updated': 'custom_field_id',
}

export interface StandinWebhook {
  id: number
  /** The full event name as registered, e.g. `subscriber.subscriber_unsubscribe`. */
  event: string
  /** The event's parameter (e.g. `tag_id`), or null when it takes none. */
  parameter: { name: string; value: number | string } | null
  target_url: string
  created_at: string
}

export interface StandinWebhookDelivery {
  at: number
  /** The API key of the account the webhook belongs to. */
  key: string
  webhookId: number
  event: string
  target_url: string
  body: JsonObject
  /** The target's answer status; 0 when it gave none (refused, reset, timed out). */
  status: number
}

/** Kit's answer when either part of a registration is missing. */
const MISSING = '`event` and `target` parameters must be provided'

function parameterValue(name: string, raw: unknown): number | string {
  if (name === 'initiator_value') {
    if (typeof raw === 'string' && raw.trim() !== '') return raw
  } else if (typeof raw === 'number' && Number.isInteger(raw)) {
    return raw
  } else if (typeof raw === 'string' && /^\d+$/.test(raw)) {
    return Number(raw)
  }
  // Unsettled wording; modelled as a 422 naming the parameter.
  throw new KitError(422, [`\`${name}\` must be provided for this event`])
}

function isHttpUrl(raw: string): boolean {
  try {
    const url = new URL(raw)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}

/** Validates a `POST /v4/webhooks` body. */
export function parseWebhook(body: JsonObject): Omit<StandinWebhook, 'id' | 'created_at'> {
  const target = body.target_url
  const event = body.event
  if (typeof target !== 'string' || target.trim() === '' || typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new KitError(422, [MISSING])
  }
  const name = (event as JsonObject).name
  if (typeof name !== 'string' || name === '') throw new KitError(422, [MISSING])
  if (!(name in WEBHOOK_EVENTS)) throw new KitError(422, ['Event name is invalid'])
  if (!isHttpUrl(target)) throw new KitError(422, ['Target url is invalid'])
  const parameterName = WEBHOOK_EVENTS[name] ?? null
  const parameter =
    parameterName === null ? null : { name: parameterName, value: parameterValue(parameterName, (event as JsonObject)[parameterName]) }
  return { event: name, parameter, target_url: target }
}

/** How Kit shows a registration: `{"id","account_id","event":{"name", ...},"target_url"}`. */
export function webhookJson(accountId: number, webhook: StandinWebhook): JsonObject {
  const shortName = webhook.event.slice(webhook.event.indexOf('.') + 1)
  const event =
    webhook.parameter === null
      ? { name: shortName, initiator_value: null }
      : { name: shortName, [webhook.parameter.name]: webhook.parameter.value }
  return { id: webhook.id, account_id: accountId, event, target_url: webhook.target_url }
}

/** True when a registration listens to this event (and, if it takes one, this parameter value). */
export function listensTo(webhook: StandinWebhook, event: string, parameterValue?: number): boolean {
  if (webhook.event !== event) return false
  return webhook.parameter === null || webhook.parameter.value === parameterValue
}

const DELIVERY_TIMEOUT_MS = 5_000

/** Sends deliveries and remembers them; `settle()` waits for those under way. */
export class WebhookSender {
  readonly deliveries: StandinWebhookDelivery[] = []
  private readonly inFlight = new Set<Promise<void>>()
  private readonly controllers = new Set<AbortController>()

  send(key: string, webhook: StandinWebhook, body: JsonObject): void {
    const delivery: StandinWebhookDelivery = {
      at: Date.now(),
      key,
      webhookId: webhook.id,
      event: webhook.event,
      target_url: webhook.target_url,
      body,
      status: 0,
    }
    this.deliveries.push(delivery)
    const controller = new AbortController()
    this.controllers.add(controller)
    const timer = setTimeout(() => controller.abort(), DELIVERY_TIMEOUT_MS)
    const attempt = fetch(webhook.target_url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    })
      .then(async (response) => {
        delivery.status = response.status
        await response.arrayBuffer()
      })
      // Kit does not retry a legacy webhook: a delivery that got no answer is recorded as such.
      .catch(() => {
        delivery.status = 0
      })
      .finally(() => {
        clearTimeout(timer)
        this.controllers.delete(controller)
        this.inFlight.delete(attempt)
      })
    this.inFlight.add(attempt)
  }

  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight])
  }

  /** Abandons what is under way (the stand-in is closing). */
  async close(): Promise<void> {
    for (const controller of this.controllers) controller.abort()
    await this.settle()
  }
}
