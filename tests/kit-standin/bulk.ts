/**
 * Kit's bulk endpoints (`/v4/bulk/...`) as its reference describes them: OAuth tokens only, up to
 * 100 items answered at once (200, with per-item `failures`), more queued (202 `{}`, applied later,
 * the 200 body POSTed to `callback_url` when done), 413 past the account's queued-bytes limit (Kit:
 * 300 MB per app per account), 403 when a create would pass the plan's subscriber limit, 422 when
 * the list is missing, empty or not an array.
 *
 * As strict as Kit's reference allows, never more lenient:
 * - a failure echoes the item with the reference Kit could not resolve as null (an unknown tag or
 *   subscriber id, an invalid email), as Kit's own examples show: a client has to pair failures
 *   with what it sent by the other values, never by reading the bad id back;
 * - answers do not follow the request's order (Kit promises none, and its example does not): the
 *   stand-in lists successes and failures in reverse, so a client pairing by position fails here;
 * - tag and form answers carry no `state` and no `fields`, as Kit's reference shows them.
 */
import { KitError, notFound, type JsonObject, type Reply } from './errors.ts'
import { SUBSCRIBER_STATES, type SubscriberState } from './filters.ts'
import { isEmailAddress } from './server.ts'
import type { StandinAccountState, StandinCustomField, StandinForm, StandinSubscriber, StandinTag } from './server.ts'

/** Kit's default: 300 MB of queued bulk request data per app per account. */
export const DEFAULT_BULK_QUEUE_LIMIT_BYTES = 300 * 1024 * 1024
/** Kit answers at once up to this many items, and queues more. */
export const MAX_SYNC_ITEMS = 100
export const OAUTH_ONLY = 'Bulk endpoints require an OAuth access token; API keys are not accepted'
export const SUBSCRIBER_LIMIT = 'This request would exceed your subscriber limit'
const QUEUE_FULL =
  'This request exceeds your queued bulk requests limit. Please wait while we process your existing requests and try again later.'
const CALLBACK_TIMEOUT_MS = 5_000

/** Makes one bulk item fail with a chosen error: the item naming this email or subscriber id. */
export interface StandinBulkFailure {
  email?: string
  subscriberId?: number
  error: string
}

/** What an account's plan and Kit's queue allow, and what tests make Kit refuse (admin API: /_admin/settings). */
export interface StandinAccountSettings {
  /** 413 once the queued bulk data plus a request would pass this; default 300 MB. */
  bulkQueueLimitBytes: number
  /** The plan's subscriber limit, counting every subscriber in any state; null (default): none. */
  subscriberLimit: number | null
  /** How long after its 202 a queued bulk request is applied; default 100 ms. */
  bulkAsyncDelayMs: number
  failInBulk: StandinBulkFailure[]
}

/** One account's bulk settings and queue. */
export interface BulkAccount {
  settings: StandinAccountSettings
  /** Bytes of the queued (202) requests not applied yet. */
  queuedBytes: number
}

/** A POST Kit made to a `callback_url` when a queued bulk request was done. */
export interface StandinBulkCallback {
  at: number
  /** The API key of the account. */
  key: string
  /** The bulk endpoint, e.g. `/v4/bulk/subscribers`. */
  path: string
  callback_url: string
  body: JsonObject
  /** The target's answer status; 0 when it gave none. */
  status: number
}

export function newBulkAccount(): BulkAccount {
  return {
    settings: { bulkQueueLimitBytes: DEFAULT_BULK_QUEUE_LIMIT_BYTES, subscriberLimit: null, bulkAsyncDelayMs: 100, failInBulk: [] },
    queuedBytes: 0,
  }
}

/** 403 when `newSubscribers` more would pass the account's plan limit (shared with `POST /v4/subscribers`). */
export function checkSubscriberLimit(state: StandinAccountState, settings: StandinAccountSettings, newSubscribers: number): void {
  const limit = settings.subscriberLimit
  if (limit !== null && newSubscribers > 0 && state.subscribers.length + newSubscribers > limit) {
    throw new KitError(403, [SUBSCRIBER_LIMIT])
  }
}

/** What the server lends the bulk endpoints for one account: its state and the single endpoints' own verbs. */
export interface BulkOperations {
  key: string
  state: StandinAccountState
  bulk: BulkAccount
  subscriberById(id: number): StandinSubscriber | undefined
  subscriberByEmail(email: string): StandinSubscriber | undefined
  /** `POST /v4/subscribers`' upsert: an existing person keeps their state, a sent first name replaces theirs. */
  upsert(input: { email: string; firstName: string | undefined; state: SubscriberState }, now: number): StandinSubscriber
  /** Tags (as `POST /v4/tags/{id}/subscribers/{id}` does); answers `tagged_at`. */
  tag(tag: StandinTag, subscriber: StandinSubscriber, now: number): string
  untag(tag: StandinTag, subscriber: StandinSubscriber): void
  writeField(subscriber: StandinSubscriber, field: StandinCustomField, value: string, now: number): void
  /** Adds to a form (as `POST /v4/forms/{id}/subscribers/{id}` does, re-subscribe path included); answers `added_at`. */
  addToForm(form: StandinForm, subscriber: StandinSubscriber, referrer: string | null, now: number): string
}

export type BulkEndpoint = 'create_subscribers' | 'tag_subscribers' | 'untag_subscribers' | 'custom_field_values' | 'add_to_forms'

interface Outcome {
  /** The 200 body (and the callback's). */
  body: JsonObject
}

interface EndpointRules {
  /** The top-level list. */
  list: string
  /** Whole-request checks beyond the list's shape (422, 403). */
  check?: (ops: BulkOperations, items: JsonObject[]) => void
  apply: (ops: BulkOperations, items: JsonObject[], now: number) => Outcome
}

const isId = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value > 0

/** The failure an admin rule gives this person, if any. */
function injectedError(ops: BulkOperations, subscriber: { id?: number; email?: string | null }): string | null {
  const email = subscriber.email?.toLowerCase()
  const rule = ops.bulk.settings.failInBulk.find(
    (candidate) =>
      (candidate.email !== undefined && email !== undefined && candidate.email.toLowerCase() === email) ||
      (candidate.subscriberId !== undefined && candidate.subscriberId === subscriber.id),
  )
  return rule?.error ?? null
}

function injectedFor(ops: BulkOperations, subscriber: StandinSubscriber): string | null {
  return injectedError(ops, { id: subscriber.id, email: subscriber.email_address })
}

const reversed = <T>(items: T[]): T[] => [...items].reverse()

function listItems(body: JsonObject, list: string): JsonObject[] {
  const items = body[list]
  if (!Array.isArray(items) || items.length === 0) throw new KitError(422, [`No ${list.replaceAll('_', ' ')} included for processing`])
  if (items.some((item) => typeof item !== 'object' || item === null || Array.isArray(item))) {
    throw new KitError(422, [`Each of ${list} must be an object`])
  }
  return items as JsonObject[]
}

/**
 * Optional: Kit's reference marks it nullable, and Kit's own libraries leave it out when they have
 * none. When sent it must be an http(s) URL (Kit has to POST to it).
 */
function callbackUrl(body: JsonObject): string | null {
  const raw = body.callback_url
  if (raw === undefined || raw === null) return null
  if (typeof raw === 'string') {
    try {
      const url = new URL(raw)
      if (url.protocol === 'http:' || url.protocol === 'https:') return raw
    } catch {
      // Refused below.
    }
  }
  throw new KitError(422, ['Callback url is invalid'])
}

// POST /v4/bulk/subscribers

interface SubscriberItem {
  item: JsonObject
  email: string | null
  firstName: string | undefined
  state: SubscriberState
  errors: string[]
}

function readSubscriberItem(ops: BulkOperations, item: JsonObject): SubscriberItem {
  const errors: string[] = []
  const email = isEmailAddress(item.email_address) ? item.email_address : null
  if (email === null) errors.push('Email address is invalid')
  const rawName = item.first_name
  if (rawName !== undefined && rawName !== null && typeof rawName !== 'string') errors.push('First name is invalid')
  const rawState = item.state ?? 'active'
  const state = SUBSCRIBER_STATES.includes(rawState as SubscriberState) ? (rawState as SubscriberState) : 'active'
  if (state !== rawState) errors.push('State is invalid')
  if (errors.length === 0 && email !== null) {
    const existing = ops.subscriberByEmail(email)
    const injected = injectedError(ops, { id: existing?.id, email })
    if (injected !== null) errors.push(injected)
  }
  // A null first name is no first name: an existing person keeps theirs.
  return { item, email, firstName: typeof rawName === 'string' ? rawName : undefined, state, errors }
}

const CREATE_SUBSCRIBERS: EndpointRules = {
  list: 'subscribers',
  /**
   * Custom fields are not part of this endpoint. Kit may well drop a `fields` key without a word;
   * the stand-in refuses the whole request (422) instead, the strict choice: values a client meant
   * to store can't pass for a success, and no half of the batch is applied.
   */
  check(ops, items) {
    if (items.some((item) => 'fields' in item)) {
      throw new KitError(422, ['Custom fields cannot be set here: use POST /v4/bulk/custom_fields/subscribers'])
    }
    const fresh = new Set<string>()
    for (const read of items.map((item) => readSubscriberItem(ops, item))) {
      if (read.errors.length === 0 && read.email !== null && !ops.subscriberByEmail(read.email)) fresh.add(read.email.toLowerCase())
    }
    checkSubscriberLimit(ops.state, ops.bulk.settings, fresh.size)
  },
  apply(ops, items, now) {
    const subscribers: JsonObject[] = []
    const failures: JsonObject[] = []
    for (const item of items) {
      const read = readSubscriberItem(ops, item)
      if (read.errors.length > 0) {
        failures.push({
          subscriber: {
            first_name: typeof item.first_name === 'string' ? item.first_name : null,
            email_address: read.email,
            state: typeof item.state === 'string' ? item.state : 'active',
            created_at: null,
          },
          errors: read.errors,
        })
        continue
      }
      const subscriber = ops.upsert({ email: read.email as string, firstName: read.firstName, state: read.state }, now)
      const { id, first_name, email_address, state, created_at } = subscriber
      subscribers.push({ id, first_name, email_address, state, created_at })
    }
    return { body: { subscribers: reversed(subscribers), failures: reversed(failures) } }
  },
}

// POST and DELETE /v4/bulk/tags/subscribers

interface Resolved<T> {
  found: T | undefined
  /** The id as Kit echoes it in a failure: null when it resolves to nothing. */
  echo: number | null
}

function resolveTagging(ops: BulkOperations, item: JsonObject): { tag: Resolved<StandinTag>; subscriber: Resolved<StandinSubscriber> } {
  const tag = isId(item.tag_id) ? ops.state.tags.find((candidate) => candidate.id === item.tag_id) : undefined
  const subscriber = isId(item.subscriber_id) ? ops.subscriberById(item.subscriber_id) : undefined
  return {
    tag: { found: tag, echo: tag ? tag.id : null },
    subscriber: { found: subscriber, echo: subscriber ? subscriber.id : null },
  }
}

function taggings(ops: BulkOperations, items: JsonObject[], act: (tag: StandinTag, subscriber: StandinSubscriber) => void): JsonObject[] {
  const failures: JsonObject[] = []
  for (const item of items) {
    const { tag, subscriber } = resolveTagging(ops, item)
    const errors: string[] = []
    if (!tag.found) errors.push('Tag does not exist')
    if (!subscriber.found) errors.push('Subscriber does not exist')
    const injected = subscriber.found ? injectedFor(ops, subscriber.found) : null
    if (injected !== null) errors.push(injected)
    if (errors.length > 0 || !tag.found || !subscriber.found) {
      failures.push({ tagging: { tag_id: tag.echo, subscriber_id: subscriber.echo }, errors })
      continue
    }
    act(tag.found, subscriber.found)
  }
  return reversed(failures)
}

const TAG_SUBSCRIBERS: EndpointRules = {
  list: 'taggings',
  apply(ops, items, now) {
    const subscribers: JsonObject[] = []
    const failures = taggings(ops, items, (tag, subscriber) => {
      const taggedAt = ops.tag(tag, subscriber, now)
      const { id, first_name, email_address, created_at } = subscriber
      subscribers.push({ id, first_name, email_address, created_at, tagged_at: taggedAt })
    })
    return { body: { subscribers: reversed(subscribers), failures } }
  },
}

const UNTAG_SUBSCRIBERS: EndpointRules = {
  list: 'taggings',
  apply(ops, items) {
    return { body: { failures: taggings(ops, items, (tag, subscriber) => ops.untag(tag, subscriber)) } }
  },
}

// POST /v4/bulk/custom_fields/subscribers

const CUSTOM_FIELD_VALUES: EndpointRules = {
  list: 'custom_field_values',
  /** Values are strings in Kit's schema, as on `PUT /v4/subscribers/{id}`, which refuses anything else. */
  check(_ops, items) {
    if (items.some((item) => typeof item.value !== 'string')) throw new KitError(422, ['Custom field values must be strings'])
  },
  apply(ops, items, now) {
    const values: JsonObject[] = []
    const failures: JsonObject[] = []
    for (const item of items) {
      const subscriber = isId(item.subscriber_id) ? ops.subscriberById(item.subscriber_id) : undefined
      // The field by its numeric id, never its key.
      const field = isId(item.subscriber_custom_field_id)
        ? ops.state.customFields.find((candidate) => candidate.id === item.subscriber_custom_field_id)
        : undefined
      const value = item.value as string
      const errors: string[] = []
      if (!subscriber) errors.push('Subscriber does not exist')
      if (!field) errors.push('Custom field does not exist')
      const injected = subscriber ? injectedFor(ops, subscriber) : null
      if (injected !== null) errors.push(injected)
      if (errors.length > 0 || !subscriber || !field) {
        // Kit's example keeps an unknown field id as sent, and nulls an unknown subscriber.
        const fieldId = item.subscriber_custom_field_id ?? null
        failures.push({
          custom_field_value: { subscriber_id: subscriber ? subscriber.id : null, subscriber_custom_field_id: fieldId, value },
          errors,
        })
        continue
      }
      ops.writeField(subscriber, field, value, now)
      values.push({ subscriber_id: subscriber.id, subscriber_custom_field_id: field.id, value })
    }
    return { body: { custom_field_values: reversed(values), failures: reversed(failures) } }
  },
}

// POST /v4/bulk/forms/subscribers

/** Kit splits a referrer's UTM parameters out; absent ones are empty strings. */
function utmParameters(referrer: string | null): JsonObject {
  let params = new URLSearchParams()
  if (referrer !== null) {
    try {
      params = new URL(referrer).searchParams
    } catch {
      params = new URLSearchParams()
    }
  }
  const read = (name: string) => params.get(`utm_${name}`) ?? ''
  return { source: read('source'), medium: read('medium'), campaign: read('campaign'), term: read('term'), content: read('content') }
}

const ADD_TO_FORMS: EndpointRules = {
  list: 'additions',
  check(_ops, items) {
    if (items.some((item) => item.referrer !== undefined && item.referrer !== null && typeof item.referrer !== 'string')) {
      throw new KitError(422, ['Referrer must be a string'])
    }
  },
  apply(ops, items, now) {
    const subscribers: JsonObject[] = []
    const failures: JsonObject[] = []
    for (const item of items) {
      // An archived form, and a legacy one (joined through /v4/landing_pages), do not exist here, as on the single route.
      const form = isId(item.form_id)
        ? ops.state.forms.find((candidate) => candidate.id === item.form_id && !candidate.archived && !candidate.legacy)
        : undefined
      const subscriber = isId(item.subscriber_id) ? ops.subscriberById(item.subscriber_id) : undefined
      const referrer = typeof item.referrer === 'string' ? item.referrer : null
      const errors: string[] = []
      if (!form) errors.push('Form does not exist')
      if (!subscriber) errors.push('Subscriber does not exist')
      const injected = subscriber ? injectedFor(ops, subscriber) : null
      if (injected !== null) errors.push(injected)
      if (errors.length > 0 || !form || !subscriber) {
        failures.push({
          subscription: { form_id: form ? form.id : null, subscriber_id: subscriber ? subscriber.id : null, referrer },
          errors,
        })
        continue
      }
      const addedAt = ops.addToForm(form, subscriber, referrer, now)
      const { id, first_name, email_address, created_at } = subscriber
      subscribers.push({
        id,
        first_name,
        email_address,
        created_at,
        added_at: addedAt,
        referrer,
        referrer_utm_parameters: utmParameters(referrer),
      })
    }
    return { body: { subscribers: reversed(subscribers), failures: reversed(failures) } }
  },
}

const ENDPOINTS: Readonly<Record<BulkEndpoint, EndpointRules>> = {
  create_subscribers: CREATE_SUBSCRIBERS,
  tag_subscribers: TAG_SUBSCRIBERS,
  untag_subscribers: UNTAG_SUBSCRIBERS,
  custom_field_values: CUSTOM_FIELD_VALUES,
  add_to_forms: ADD_TO_FORMS,
}

/** The bulk endpoints of one stand-in: its queued work and the callbacks it made. */
export class StandinBulk {
  readonly callbacks: StandinBulkCallback[] = []
  /** Queued work by timer, with what resolves its settle() wait. */
  private readonly queued = new Map<NodeJS.Timeout, () => void>()
  private readonly inFlight = new Set<Promise<void>>()
  private readonly controllers = new Set<AbortController>()

  /** Answers one bulk request (already authenticated with an OAuth token and counted). */
  reply(ops: BulkOperations, endpoint: BulkEndpoint, path: string, body: JsonObject, bodyBytes: number, now: number): Reply {
    const rules = ENDPOINTS[endpoint]
    if (!rules) throw notFound()
    const { settings } = ops.bulk
    if (ops.bulk.queuedBytes + bodyBytes > settings.bulkQueueLimitBytes) throw new KitError(413, [QUEUE_FULL])
    const items = listItems(body, rules.list)
    const callback = callbackUrl(body)
    rules.check?.(ops, items)
    if (items.length <= MAX_SYNC_ITEMS) return { status: 200, body: rules.apply(ops, items, now).body }

    ops.bulk.queuedBytes += bodyBytes
    let done = (): void => undefined
    const settled = new Promise<void>((resolve) => {
      done = resolve
    })
    this.inFlight.add(settled)
    void settled.then(() => this.inFlight.delete(settled))
    const timer = setTimeout(() => {
      this.queued.delete(timer)
      ops.bulk.queuedBytes -= bodyBytes
      const outcome = rules.apply(ops, items, Date.now())
      if (callback === null) done()
      else void this.callBack(ops.key, path, callback, outcome.body).finally(done)
    }, settings.bulkAsyncDelayMs)
    this.queued.set(timer, done)
    return { status: 202, body: {} }
  }

  /** Resolves once every queued request is applied and its callback answered (or not). */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight])
  }

  /** Drops queued work and abandons callbacks under way (the stand-in is closing). */
  async close(): Promise<void> {
    for (const [timer, done] of this.queued) {
      clearTimeout(timer)
      done()
    }
    this.queued.clear()
    for (const controller of this.controllers) controller.abort()
    await this.settle()
  }

  /** POSTs the 200 body to the callback once, as Kit does for a queued bulk request. */
  private async callBack(key: string, path: string, target: string, body: JsonObject): Promise<void> {
    const record: StandinBulkCallback = { at: Date.now(), key, path, callback_url: target, body, status: 0 }
    this.callbacks.push(record)
    const controller = new AbortController()
    this.controllers.add(controller)
    const timer = setTimeout(() => controller.abort(), CALLBACK_TIMEOUT_MS)
    try {
      const response = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: controller.signal,
      })
      record.status = response.status
      await response.arrayBuffer()
    } catch {
      // No answer (refused, reset, timed out): recorded as status 0, never retried.
      record.status = 0
    } finally {
      clearTimeout(timer)
      this.controllers.delete(controller)
    }
  }
}
