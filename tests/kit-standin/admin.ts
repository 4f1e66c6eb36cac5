/**
 * The stand-in's admin API, outside Kit's `/v4`: what an owner does in Kit's own app, over HTTP so
 * that another process (the local App Station, a person with curl) can do it too. It acts on the
 * account of the `X-Kit-Api-Key` header. Admin requests are not Kit requests: they are not in
 * `requests`, not rate limited, and never take an injected failure. `{ref}` is a subscriber id or
 * an email address (URL-encoded).
 *
 *   GET  /_admin/subscribers/{ref}              the subscriber now: any state, no list lag, with updated_at
 *   POST /_admin/subscribers/{ref}/unsubscribe  state cancelled, fires subscriber.subscriber_unsubscribe
 *   POST /_admin/subscribers/{ref}/bounce       state bounced, fires subscriber.subscriber_bounce
 *   POST /_admin/subscribers/{ref}/complain     state complained, fires subscriber.subscriber_complain
 *   POST /_admin/subscribers/{ref}/confirm      the confirmation link clicked: active, fires subscriber.subscriber_activate
 *   PUT  /_admin/subscribers/{ref}              {"first_name"?, "email_address"?, "fields"?} edited in Kit's app
 *   GET  /_admin/confirmation_emails            the confirmation emails Kit sent, oldest first
 *   GET  /_admin/webhook_deliveries             the webhook deliveries made, with the target's answer status
 *   GET  /_admin/settings                       the account's plan and bulk settings, with the bulk bytes queued now
 *   PUT  /_admin/settings                       {"bulkQueueLimitBytes"?, "subscriberLimit"?, "bulkAsyncDelayMs"?, "failInBulk"?}
 *   GET  /_admin/bulk_callbacks                 the POSTs made to bulk requests' callback_url, with the target's answer status
 */
import { KitError, notFound, type JsonObject, type Reply } from './errors.ts'
import type { SubscriberState } from './filters.ts'
import {
  subscriberBasics,
  type KitStandin,
  type StandinAccountSettings,
  type StandinBulkFailure,
  type StandinSubscriber,
  type StandinSubscriberEdit,
} from './server.ts'

const ACTIONS: Readonly<Record<string, SubscriberState>> = {
  unsubscribe: 'cancelled',
  bounce: 'bounced',
  complain: 'complained',
  confirm: 'active',
}

function adminJson(subscriber: StandinSubscriber): JsonObject {
  return {
    ...subscriberBasics(subscriber),
    updated_at: subscriber.updated_at,
    fields: { ...subscriber.fields },
    tag_ids: [...subscriber.tags],
  }
}

function decodeRef(rawRef: string): string {
  try {
    return decodeURIComponent(rawRef)
  } catch {
    throw new KitError(400, ['Invalid subscriber reference'])
  }
}

function findSubscriber(standin: KitStandin, key: string, rawRef: string): StandinSubscriber {
  const ref = decodeRef(rawRef)
  const wanted = ref.toLowerCase()
  const found = standin
    .account(key)
    .subscribers.find((subscriber) =>
      /^\d+$/.test(ref) ? subscriber.id === Number(ref) : subscriber.email_address.toLowerCase() === wanted,
    )
  if (!found) throw notFound()
  return found
}

function editOf(body: JsonObject): StandinSubscriberEdit {
  const edit: StandinSubscriberEdit = {}
  if (body.first_name !== undefined) {
    if (body.first_name !== null && typeof body.first_name !== 'string') throw new KitError(422, ['First name is invalid'])
    edit.firstName = body.first_name
  }
  if (body.email_address !== undefined) {
    if (typeof body.email_address !== 'string') throw new KitError(422, ['Email address is invalid'])
    edit.email = body.email_address
  }
  if (body.fields !== undefined) {
    const fields = body.fields
    if (
      typeof fields !== 'object' ||
      fields === null ||
      Array.isArray(fields) ||
      Object.values(fields).some((value) => typeof value !== 'string')
    ) {
      throw new KitError(422, ['Fields must be an object of strings'])
    }
    edit.fields = fields as Record<string, string>
  }
  return edit
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0

function failureOf(raw: unknown): StandinBulkFailure {
  const invalid = new KitError(422, ['failInBulk takes [{"email" or "subscriberId", "error"}]'])
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid
  const { email, subscriberId, error, ...rest } = raw as JsonObject
  if (Object.keys(rest).length > 0 || typeof error !== 'string' || error === '') throw invalid
  if ((email === undefined) === (subscriberId === undefined)) throw invalid
  if (email !== undefined) {
    if (typeof email !== 'string' || email === '') throw invalid
    return { email, error }
  }
  if (!isCount(subscriberId) || subscriberId === 0) throw invalid
  return { subscriberId, error }
}

/** A settings change: every key optional, unknown keys refused (a typo must not pass for a setting). */
function settingsChange(body: JsonObject): Partial<StandinAccountSettings> {
  const change: Partial<StandinAccountSettings> = {}
  for (const [name, value] of Object.entries(body)) {
    if (name === 'bulkQueueLimitBytes' && isCount(value)) change.bulkQueueLimitBytes = value
    else if (name === 'subscriberLimit' && (value === null || isCount(value))) change.subscriberLimit = value
    else if (name === 'bulkAsyncDelayMs' && isCount(value)) change.bulkAsyncDelayMs = value
    else if (name === 'failInBulk' && Array.isArray(value)) change.failInBulk = value.map(failureOf)
    else throw new KitError(422, [`Invalid setting: ${name}`])
  }
  return change
}

/** Answers one admin request for the account of `key`; throws a KitError for an error answer. */
export function adminReply(standin: KitStandin, key: string, method: string, pathname: string, body: JsonObject): Reply {
  const subscriberPath = /^\/_admin\/subscribers\/([^/]+)(?:\/([a-z]+))?\/?$/.exec(pathname)
  if (subscriberPath?.[1]) {
    const subscriber = findSubscriber(standin, key, subscriberPath[1])
    const action = subscriberPath[2]
    if (action === undefined && method === 'GET') return { status: 200, body: { subscriber: adminJson(subscriber) } }
    if (action === undefined && method === 'PUT') {
      standin.editSubscriber(key, subscriber.id, editOf(body))
      return { status: 200, body: { subscriber: adminJson(subscriber) } }
    }
    const state = action === undefined ? undefined : ACTIONS[action]
    if (state !== undefined && method === 'POST') {
      standin.changeState(key, subscriber.id, state)
      return { status: 200, body: { subscriber: adminJson(subscriber) } }
    }
    throw notFound()
  }
  if (/^\/_admin\/settings\/?$/.test(pathname) && (method === 'GET' || method === 'PUT')) {
    return { status: 200, body: { settings: standin.accountSettings(key, method === 'PUT' ? settingsChange(body) : {}) } }
  }
  if (method === 'GET' && /^\/_admin\/bulk_callbacks\/?$/.test(pathname)) {
    const callbacks = standin.bulkCallbacks
      .filter((callback) => callback.key === key)
      .map((callback) => ({
        at: new Date(callback.at).toISOString(),
        path: callback.path,
        callback_url: callback.callback_url,
        status: callback.status,
        body: callback.body,
      }))
    return { status: 200, body: { bulk_callbacks: callbacks } }
  }
  if (method === 'GET' && /^\/_admin\/confirmation_emails\/?$/.test(pathname)) {
    return { status: 200, body: { confirmation_emails: standin.account(key).confirmationEmails } }
  }
  if (method === 'GET' && /^\/_admin\/webhook_deliveries\/?$/.test(pathname)) {
    const deliveries = standin.webhookDeliveries
      .filter((delivery) => delivery.key === key)
      .map((delivery) => ({
        at: new Date(delivery.at).toISOString(),
        webhook_id: delivery.webhookId,
        event: delivery.event,
        target_url: delivery.target_url,
        status: delivery.status,
        body: delivery.body,
      }))
    return { status: 200, body: { webhook_deliveries: deliveries } }
  }
  throw notFound()
}
