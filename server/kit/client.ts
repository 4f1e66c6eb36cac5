// Over 400 lines: one request path (budget, retries, redirects, error wording) serves every Kit endpoint listed here.
/**
 * The Kit v4 API client. One factory per process holds the shared request budget; `forKey` gives
 * a small API object bound to one credential (an API key, or an OAuth connection's token source)
 * and one priority.
 *
 * Every attempt takes a budget slot first (a caller that must not wait — the pipeline — gets a
 * BudgetSpentError at once when none is free), 5xx answers and network failures are retried with
 * exponential backoff and full jitter, redirects are never followed (the key would travel with
 * them to another host), and every failure ends as a `KitError` whose messages come
 * from Kit's answer (never an HTML page, never the API key).
 */
import { createHmac } from 'node:crypto'
import { ofetch } from 'ofetch'
import { BudgetSpentError, type Priority, type Release, type RequestBudget } from './budget.ts'
import { abortError, KitError, KitFieldWarnings, kindForStatus } from './errors.ts'
import type { KitAuth } from '../core/ports.ts'
import {
  BULK_BATCH,
  type BulkFailure,
  type BulkFieldValue,
  type BulkFormAddition,
  type BulkCreated,
  type BulkSubscriberInput,
  type BulkTagging,
  type KitAccountInfo,
  type KitApi,
  type KitBulkApi,
  type KitCustomFieldItem,
  type KitFieldValues,
  type KitFormItem,
  type KitSequenceItem,
  type KitSubscriber,
  type KitTagItem,
  type UpdateSubscriberInput,
  type UpsertResult,
  type UpsertSubscriberInput,
} from '../core/kit.ts'

export type { KitApi, KitAuth, KitFieldValues, UpdateSubscriberInput, UpsertResult, UpsertSubscriberInput }

export interface KitRequestInfo {
  method: string
  path: string
  status: number | 'network_error'
  durationMs: number
  credentialId: string
}

export interface RetryOptions {
  /** Total attempts for one call, the first included. */
  attempts: number
  baseMs: number
  maxMs: number
}

export interface KitClientOptions {
  /** Kit's base URL without `/v4`, e.g. https://api.kit.com */
  baseUrl: string
  budget: RequestBudget
  /** The server key credential ids are computed with (see `credentialIdFor`). */
  credentialKey: Buffer
  /** Per attempt, covering the whole answer; default 10000. */
  timeoutMs?: number
  /** For 5xx answers, network errors and timeouts; default { attempts: 3, baseMs: 250, maxMs: 4000 }. */
  retry?: RetryOptions
  /** Called after every HTTP attempt. */
  onRequest?: (info: KitRequestInfo) => void
}

export interface KitCallOptions {
  /** The id a stored credential was saved with; computed from the key when absent. */
  credentialId?: string
  /** Default 'interactive'. */
  priority?: Priority
  onRequest?: (info: KitRequestInfo) => void
  signal?: AbortSignal
  /** After a 429, wait for the budget and try once more; default false for interactive, true for background. */
  retryOn429?: boolean
  /**
   * false: never wait for the credential's budget; a request finding no slot free throws
   * BudgetSpentError (with when one frees up) before anything is sent. Default true.
   */
  waitForBudget?: boolean
}

/** What the Kit watch asks besides: the subscribers list page by page, and legacy webhooks. */
export interface KitWatchApi extends KitApi {
  /** One page of `GET /v4/subscribers` with Kit's filters as given; `next` is the following page's cursor, or null. */
  listSubscribersPage(filter: Record<string, string>, after: string | null): Promise<{ subscribers: KitSubscriber[]; next: string | null }>
  /** Registers a legacy webhook (`event` as Kit names it); answers Kit's id for it. */
  createWebhook(targetUrl: string, event: string): Promise<{ id: number }>
  /** Removes a webhook; one Kit no longer has counts as removed. */
  deleteWebhook(id: number): Promise<void>
}

const PAGE_SIZE = 1000
const MAX_MESSAGE_LENGTH = 300
const DEFAULT_RETRY: RetryOptions = { attempts: 3, baseMs: 250, maxMs: 4000 }
const DEFAULT_TIMEOUT_MS = 10_000

/**
 * The id a credential is known by (budget, caches, logs): an HMAC of the API key under a server
 * key, so an id seen in a log or a database copy cannot be checked against guessed keys.
 */
export function credentialIdFor(credentialKey: Buffer, apiKey: string): string {
  return createHmac('sha256', credentialKey).update(apiKey, 'utf8').digest('hex').slice(0, 32)
}

/** OAuth credential ids start with this: Kit's budget for them is an OAuth token's (see plugins/kit.ts). */
const OAUTH_ID_PREFIX = 'oauth_'

/**
 * The id of a community's OAuth connection to one Kit account. Tokens rotate with every refresh,
 * so the id is the community's and the account's: the same account connected again keeps its
 * caches, another account starts afresh (as another API key does).
 */
export function oauthCredentialIdFor(credentialKey: Buffer, communityId: string, accountId: number | string): string {
  const mac = createHmac('sha256', credentialKey).update(`oauth\n${communityId}\n${accountId}`, 'utf8').digest('hex').slice(0, 32)
  return `${OAUTH_ID_PREFIX}${mac}`
}

export const isOAuthCredentialId = (credentialId: string): boolean => credentialId.startsWith(OAUTH_ID_PREFIX)

/** Kit's words for an OAuth access token past its life (a 401 that asks for a refresh, not a revoked grant). */
export function saysTokenExpired(messages: readonly string[]): boolean {
  return messages.some((message) => /access token (has )?expired/i.test(message))
}

export class KitClientFactory {
  readonly #options: KitClientOptions

  constructor(options: KitClientOptions) {
    this.#options = options
  }

  credentialIdFor(apiKey: string): string {
    return credentialIdFor(this.#options.credentialKey, apiKey)
  }

  oauthCredentialIdFor(communityId: string, accountId: number | string): string {
    return oauthCredentialIdFor(this.#options.credentialKey, communityId, accountId)
  }

  /** An API for one credential: an API key (as a string or a KitAuth), or an OAuth token source. */
  forKey(credential: string | KitAuth, options: KitCallOptions = {}): KitApi {
    return this.forWatch(credential, options)
  }

  /** The same API with Kit's bulk endpoints, for an OAuth connection (Kit refuses them to API keys). */
  forBulk(auth: KitAuth, options: KitCallOptions = {}): KitBulkApi {
    if (auth.kind !== 'oauth') throw new Error("Kit's bulk endpoints take OAuth connections only")
    return new KitApiClient(auth, options.credentialId ?? '', this.#options, options)
  }

  forWatch(credential: string | KitAuth, options: KitCallOptions = {}): KitWatchApi {
    const auth: KitAuth = typeof credential === 'string' ? { kind: 'api_key', apiKey: credential } : credential
    if (auth.kind === 'oauth' && options.credentialId === undefined) throw new Error('an OAuth connection is known by its credential id')
    const credentialId = options.credentialId ?? (auth.kind === 'api_key' ? this.credentialIdFor(auth.apiKey) : '')
    return new KitApiClient(auth, credentialId, this.#options, options)
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

interface RequestSpec {
  method: Method
  path: string
  query?: Record<string, string>
  body?: Record<string, unknown>
}

interface KitAnswer {
  status: number
  data: unknown
  /** Kit's clock when it answered (its `Date` header, to the second), epoch ms; null without one. */
  answeredAt: number | null
}

type Attempt =
  { type: 'answer'; status: number; text: string; contentType: string; date: string | null } | { type: 'failure'; message: string }

/** The secret one attempt is sent with, and the header that carries it. */
interface Presented {
  secret: string
  headers: Record<string, string>
}

class KitApiClient implements KitWatchApi, KitBulkApi {
  readonly credentialId: string
  readonly #auth: KitAuth
  /** The secret last sent (kept out of every message Kit's answer could echo). */
  #secret = ''
  readonly #options: KitClientOptions
  readonly #call: KitCallOptions
  readonly #priority: Priority

  constructor(auth: KitAuth, credentialId: string, options: KitClientOptions, call: KitCallOptions) {
    this.credentialId = credentialId
    this.#auth = auth
    this.#options = options
    this.#call = call
    this.#priority = call.priority ?? 'interactive'
  }

  async getAccount(): Promise<KitAccountInfo> {
    const { status, data } = await this.#send({ method: 'GET', path: '/v4/account' })
    const body = objectOf(data, status, 'account')
    const user = objectOf(body.user, status, 'account')
    const account = objectOf(body.account, status, 'account')
    return {
      user: {
        email: stringOf(user.email, status, 'account'),
        id: user.id === undefined || user.id === null ? null : idOf(user.id, status, 'account'),
      },
      account: {
        id: idOf(account.id, status, 'account'),
        name: stringOf(account.name, status, 'account'),
        plan_type: nullableString(account.plan_type),
        primary_email_address: stringOf(account.primary_email_address, status, 'account'),
      },
    }
  }

  listTags(): Promise<KitTagItem[]> {
    return this.#listAll('/v4/tags', 'tags', toTag)
  }

  async createTag(name: string): Promise<{ tag: KitTagItem; created: boolean }> {
    const { status, data } = await this.#send({ method: 'POST', path: '/v4/tags', body: { name } })
    return { tag: toTag(objectOf(data, status, 'tag').tag, status), created: status === 201 }
  }

  listCustomFields(): Promise<KitCustomFieldItem[]> {
    return this.#listAll('/v4/custom_fields', 'custom_fields', toCustomField)
  }

  async createCustomField(label: string): Promise<{ field: KitCustomFieldItem; created: boolean }> {
    const { status, data } = await this.#send({ method: 'POST', path: '/v4/custom_fields', body: { label } })
    const body = objectOf(data, status, 'custom field')
    return { field: toCustomField(body.custom_field, status), created: status === 201 }
  }

  /** Kit lists only active forms unless asked; its own libraries drop forms with a null format. */
  async listForms(status: 'active' | 'archived' | 'all' = 'active'): Promise<KitFormItem[]> {
    const forms = await this.#listAll('/v4/forms', 'forms', toForm, { type: 'embed', status })
    return forms
      .filter((form) => form.format !== null)
      .map((form) => (status === 'all' ? form : { ...form, archived: status === 'archived' }))
  }

  listLegacyForms(): Promise<KitFormItem[]> {
    return this.#listAll('/v4/landing_pages', 'legacy_landing_pages', toLegacyForm, { type: 'embed' })
  }

  listSequences(): Promise<KitSequenceItem[]> {
    return this.#listAll('/v4/sequences', 'sequences', toSequence)
  }

  async upsertSubscriber(input: UpsertSubscriberInput): Promise<UpsertResult> {
    const body: Record<string, unknown> = { email_address: normalizeEmail(input.email) }
    if (input.firstName !== undefined) body.first_name = input.firstName
    if (input.state !== undefined) body.state = input.state
    if (input.fields && Object.keys(input.fields).length > 0) body.fields = input.fields
    const { status, data, answeredAt } = await this.#send({ method: 'POST', path: '/v4/subscribers', body })
    const subscriber = toSubscriber(objectOf(data, status, 'subscriber').subscriber, status)
    rejectWarnings(status, data, subscriber)
    const deferred = status === 202
    return { subscriber, created: status === 201 || (deferred && createdWhenAnswered(subscriber, answeredAt)), fieldsDeferred: deferred }
  }

  async getSubscriber(id: number): Promise<KitSubscriber | null> {
    try {
      const { status, data } = await this.#send({ method: 'GET', path: `/v4/subscribers/${idSegment(id)}` })
      return toSubscriber(objectOf(data, status, 'subscriber').subscriber, status)
    } catch (error) {
      if (error instanceof KitError && error.kind === 'not_found') return null
      throw error
    }
  }

  async findSubscriberByEmail(email: string): Promise<KitSubscriber | null> {
    const address = normalizeEmail(email)
    const { status, data } = await this.#send({
      method: 'GET',
      path: '/v4/subscribers',
      query: { email_address: address, status: 'all' },
    })
    const list = objectOf(data, status, 'subscriber list').subscribers
    if (!Array.isArray(list)) throw unexpected(status, 'subscriber list')
    const match = list.map((item) => toSubscriber(item, status)).find((s) => s.email_address.toLowerCase() === address)
    return match ?? null
  }

  async updateSubscriber(id: number, input: UpdateSubscriberInput): Promise<KitSubscriber> {
    const body: Record<string, unknown> = {}
    if (input.email !== undefined) body.email_address = input.email.trim().toLowerCase()
    if (input.firstName !== undefined) body.first_name = input.firstName
    if (input.fields !== undefined) body.fields = input.fields
    const { status, data } = await this.#send({ method: 'PUT', path: `/v4/subscribers/${idSegment(id)}`, body })
    const subscriber = toSubscriber(objectOf(data, status, 'subscriber').subscriber, status)
    rejectWarnings(status, data, subscriber)
    return subscriber
  }

  async tagSubscriber(tagId: number, subscriberId: number): Promise<void> {
    await this.#send({
      method: 'POST',
      path: `/v4/tags/${idSegment(tagId)}/subscribers/${idSegment(subscriberId)}`,
      body: {},
    })
  }

  async untagSubscriber(tagId: number, subscriberId: number): Promise<void> {
    await this.#send({ method: 'DELETE', path: `/v4/tags/${idSegment(tagId)}/subscribers/${idSegment(subscriberId)}` })
  }

  async addSubscriberToForm(formId: number, subscriberId: number, referrer?: string | null): Promise<void> {
    await this.#send({
      method: 'POST',
      path: `/v4/forms/${idSegment(formId)}/subscribers/${idSegment(subscriberId)}`,
      body: referrer ? { referrer } : {},
    })
  }

  async addSubscriberToLegacyForm(formId: number, subscriberId: number): Promise<void> {
    await this.#send({ method: 'POST', path: `/v4/landing_pages/${idSegment(formId)}/subscribers/${idSegment(subscriberId)}`, body: {} })
  }

  async addSubscriberToSequence(sequenceId: number, subscriberId: number): Promise<void> {
    await this.#send({ method: 'POST', path: `/v4/sequences/${idSegment(sequenceId)}/subscribers/${idSegment(subscriberId)}`, body: {} })
  }

  async unsubscribe(subscriberId: number): Promise<void> {
    await this.#send({ method: 'POST', path: `/v4/subscribers/${idSegment(subscriberId)}/unsubscribe`, body: {} })
  }

  async bulkCreateSubscribers(items: BulkSubscriberInput[]): Promise<BulkCreated> {
    const sent = items.map((item) => ({
      email_address: normalizeEmail(item.email),
      ...(item.firstName !== undefined ? { first_name: item.firstName } : {}),
      ...(item.state !== undefined ? { state: item.state } : {}),
    }))
    const { status, data } = await this.#bulk('POST', '/v4/bulk/subscribers', { subscribers: sent })
    const body = objectOf(data, status, 'bulk answer')
    const subscribers = Array.isArray(body.subscribers) ? body.subscribers.map((s) => toSubscriberSummary(s, status)) : []
    return { subscribers, failures: bulkFailures(body, items, sent, ['email_address']) }
  }

  bulkTag(items: BulkTagging[]): Promise<BulkFailure<BulkTagging>[]> {
    return this.#taggings('POST', items)
  }

  bulkUntag(items: BulkTagging[]): Promise<BulkFailure<BulkTagging>[]> {
    return this.#taggings('DELETE', items)
  }

  async #taggings(method: 'POST' | 'DELETE', items: BulkTagging[]): Promise<BulkFailure<BulkTagging>[]> {
    const sent = items.map((t) => ({ tag_id: t.tagId, subscriber_id: t.subscriberId }))
    const { status, data } = await this.#bulk(method, '/v4/bulk/tags/subscribers', { taggings: sent })
    return bulkFailures(objectOf(data, status, 'bulk answer'), items, sent, ['tag_id', 'subscriber_id'])
  }

  async bulkSetFields(items: BulkFieldValue[]): Promise<BulkFailure<BulkFieldValue>[]> {
    const sent = items.map((v) => ({ subscriber_id: v.subscriberId, subscriber_custom_field_id: v.fieldId, value: v.value }))
    const { status, data } = await this.#bulk('POST', '/v4/bulk/custom_fields/subscribers', { custom_field_values: sent })
    const keys = ['subscriber_id', 'subscriber_custom_field_id', 'value']
    return bulkFailures(objectOf(data, status, 'bulk answer'), items, sent, keys)
  }

  async bulkAddToForms(items: BulkFormAddition[]): Promise<BulkFailure<BulkFormAddition>[]> {
    const sent = items.map((a) => ({ form_id: a.formId, subscriber_id: a.subscriberId, ...(a.referrer ? { referrer: a.referrer } : {}) }))
    const { status, data } = await this.#bulk('POST', '/v4/bulk/forms/subscribers', { additions: sent })
    return bulkFailures(objectOf(data, status, 'bulk answer'), items, sent, ['form_id', 'subscriber_id'])
  }

  /** A bulk request: at most BULK_BATCH items, so Kit answers synchronously (200) rather than later (202). */
  async #bulk(method: 'POST' | 'DELETE', path: string, body: Record<string, unknown[]>): Promise<KitAnswer> {
    const count = Object.values(body)[0]?.length ?? 0
    if (count === 0 || count > BULK_BATCH) throw new RangeError(`a bulk request carries 1 to ${BULK_BATCH} items, not ${count}`)
    const answer = await this.#send({ method, path, body })
    if (answer.status !== 200) throw unexpected(answer.status, 'bulk answer')
    return answer
  }

  async listSubscribersPage(
    filter: Record<string, string>,
    after: string | null,
  ): Promise<{ subscribers: KitSubscriber[]; next: string | null }> {
    const query: Record<string, string> = { ...filter, per_page: String(PAGE_SIZE), ...(after === null ? {} : { after }) }
    const { status, data } = await this.#send({ method: 'GET', path: '/v4/subscribers', query })
    const body = objectOf(data, status, 'subscriber list')
    if (!Array.isArray(body.subscribers)) throw unexpected(status, 'subscriber list')
    const subscribers = body.subscribers.map((item) => toSubscriber(item, status))
    const pagination = isObject(body.pagination) ? body.pagination : null
    if (pagination?.has_next_page !== true) return { subscribers, next: null }
    const cursor = pagination.end_cursor
    if (typeof cursor !== 'string' || cursor === '' || cursor === after) throw unexpected(status, 'page cursor')
    return { subscribers, next: cursor }
  }

  async createWebhook(targetUrl: string, event: string): Promise<{ id: number }> {
    const { status, data } = await this.#send({
      method: 'POST',
      path: '/v4/webhooks',
      body: { target_url: targetUrl, event: { name: event } },
    })
    return { id: idOf(objectOf(objectOf(data, status, 'webhook').webhook, status, 'webhook').id, status, 'webhook') }
  }

  async deleteWebhook(id: number): Promise<void> {
    try {
      await this.#send({ method: 'DELETE', path: `/v4/webhooks/${idSegment(id)}` })
    } catch (error) {
      if (!(error instanceof KitError && error.kind === 'not_found')) throw error
    }
  }

  async #listAll<T>(
    path: string,
    key: string,
    toItem: (value: unknown, status: number) => T,
    filter: Record<string, string> = {},
  ): Promise<T[]> {
    const items: T[] = []
    const seen = new Set<string>()
    let after: string | null = null
    for (;;) {
      const query: Record<string, string> = { ...filter, per_page: String(PAGE_SIZE) }
      if (after !== null) query.after = after
      const { status, data } = await this.#send({ method: 'GET', path, query })
      const body = objectOf(data, status, 'list')
      const page = body[key]
      if (!Array.isArray(page)) throw unexpected(status, 'list')
      for (const value of page) items.push(toItem(value, status))
      const pagination = isObject(body.pagination) ? body.pagination : null
      if (pagination?.has_next_page !== true) return items
      const cursor = pagination.end_cursor
      if (typeof cursor !== 'string' || cursor === '' || seen.has(cursor)) throw unexpected(status, 'page cursor')
      seen.add(cursor)
      after = cursor
    }
  }

  /**
   * The header for the next attempt. An OAuth token is asked for after the budget slot is taken, so
   * a refresh made by another caller meanwhile is never missed.
   */
  async #present(): Promise<Presented> {
    const auth = this.#auth
    const secret = auth.kind === 'api_key' ? auth.apiKey : await auth.tokens.current()
    if (!isUsableKey(secret)) {
      throw new KitError('invalid_credentials', null, [
        auth.kind === 'api_key' ? 'The API key is malformed' : 'The access token is malformed',
      ])
    }
    this.#secret = secret
    return { secret, headers: auth.kind === 'api_key' ? { 'X-Kit-Api-Key': secret } : { Authorization: `Bearer ${secret}` } }
  }

  /**
   * Kit refused an OAuth token (401): whether another token is worth one more try — a refreshed
   * one when Kit said it expired, or one another caller or instance stored meanwhile.
   */
  async #renewed(attempt: Attempt, sent: Presented): Promise<boolean> {
    if (this.#auth.kind !== 'oauth' || attempt.type !== 'answer' || attempt.status !== 401) return false
    const expired = saysTokenExpired(errorMessages(attempt.text, attempt.contentType))
    return this.#auth.tokens.replace(sent.secret, expired)
  }

  async #send(spec: RequestSpec): Promise<KitAnswer> {
    if (this.#auth.kind === 'api_key' && !isUsableKey(this.#auth.apiKey)) {
      throw new KitError('invalid_credentials', null, ['The API key is malformed'])
    }
    const { budget } = this.#options
    const retry = this.#options.retry ?? DEFAULT_RETRY
    const signal = this.#call.signal
    const retryOn429 = this.#call.retryOn429 ?? this.#priority === 'background'
    let failures = 0
    let retriedRateLimit = false
    let retriedToken = false
    for (;;) {
      const release = await this.#slot(budget, signal)
      let attempt: Attempt
      let sent: Presented
      try {
        sent = await this.#present()
        attempt = await this.#attempt(spec, sent)
      } finally {
        release()
      }
      if (!retriedToken && (await this.#renewed(attempt, sent))) {
        retriedToken = true
        continue
      }
      if (attempt.type === 'answer' && attempt.status !== 429) budget.answered(this.credentialId)
      if (attempt.type === 'answer' && attempt.status >= 200 && attempt.status < 300) {
        const answeredAt = attempt.date === null ? NaN : Date.parse(attempt.date)
        return {
          status: attempt.status,
          data: parseSuccess(attempt.status, attempt.text),
          answeredAt: Number.isNaN(answeredAt) ? null : answeredAt,
        }
      }
      if (attempt.type === 'answer' && attempt.status === 429) {
        // Recorded for every instance before this one waits to try again.
        await budget.penalize(this.credentialId)
        if (retryOn429 && !retriedRateLimit) {
          retriedRateLimit = true
          continue
        }
      }
      const retryable = attempt.type === 'failure' || attempt.status >= 500
      if (retryable) {
        failures += 1
        if (failures < retry.attempts) {
          await sleep(backoffMs(failures, retry), signal)
          continue
        }
      }
      throw this.#toError(attempt)
    }
  }

  async #slot(budget: RequestBudget, signal: AbortSignal | undefined): Promise<Release> {
    if (this.#call.waitForBudget !== false) return budget.acquire(this.credentialId, this.#priority, signal)
    signal?.throwIfAborted()
    const slot = await budget.tryAcquire(this.credentialId, this.#priority)
    if ('release' in slot) return slot.release
    const rate = budget.rateOf(this.credentialId)
    throw new BudgetSpentError(this.credentialId, slot.until, rate.limit, rate.windowMs)
  }

  async #attempt(spec: RequestSpec, sent: Presented): Promise<Attempt> {
    const { baseUrl } = this.#options
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const signal = this.#call.signal
    signal?.throwIfAborted()
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, timeoutMs)
    const forwardAbort = (): void => controller.abort(signal?.reason)
    signal?.addEventListener('abort', forwardAbort, { once: true })
    const started = performance.now()
    const query = spec.query ? `?${new URLSearchParams(spec.query).toString()}` : ''
    try {
      const response = await ofetch.raw(`${baseUrl.replace(/\/+$/, '')}${spec.path}${query}`, {
        method: spec.method,
        headers: { ...sent.headers, Accept: 'application/json' },
        body: spec.body,
        responseType: 'text',
        ignoreResponseError: true,
        retry: 0,
        redirect: 'manual',
        signal: controller.signal,
      })
      this.#report(spec, response.status, started)
      return {
        type: 'answer',
        status: response.status,
        text: typeof response._data === 'string' ? response._data : '',
        contentType: response.headers.get('content-type') ?? '',
        date: response.headers.get('date'),
      }
    } catch (error) {
      this.#report(spec, 'network_error', started)
      if (signal?.aborted) throw signal.reason
      const message = timedOut ? `Kit did not answer within ${timeoutMs} ms` : networkMessage(error)
      return { type: 'failure', message }
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', forwardAbort)
    }
  }

  #report(spec: RequestSpec, status: number | 'network_error', started: number): void {
    const info: KitRequestInfo = {
      method: spec.method,
      path: spec.path,
      status,
      durationMs: Math.round(performance.now() - started),
      credentialId: this.credentialId,
    }
    this.#options.onRequest?.(info)
    this.#call.onRequest?.(info)
  }

  #toError(attempt: Attempt): KitError {
    if (attempt.type === 'failure') return new KitError('unavailable', null, [attempt.message])
    if (attempt.status >= 300 && attempt.status < 400) {
      return new KitError('unavailable', attempt.status, [
        `Kit answered with a redirect (${attempt.status}), which is never followed: check KIT_API_URL`,
      ])
    }
    const messages = errorMessages(attempt.text, attempt.contentType).map((m) => this.#redact(m))
    return new KitError(kindForStatus(attempt.status), attempt.status, messages)
  }

  #redact(message: string): string {
    return this.#secret === '' ? message : message.split(this.#secret).join('[redacted]')
  }
}

/** How far a subscriber's `created_at` may lie before Kit's answer and still be this request's creation. */
const JUST_CREATED_MS = 5_000

/**
 * A 202 does not say whether Kit created the subscriber: it did when the subscriber's `created_at`
 * is within seconds of the answer, both on Kit's clock (so no clock of ours is compared). Without a
 * `Date` header the answer is taken as not creating (the safe side: the fields are written again).
 */
function createdWhenAnswered(subscriber: KitSubscriber, answeredAt: number | null): boolean {
  const createdAt = Date.parse(subscriber.created_at)
  return answeredAt !== null && !Number.isNaN(createdAt) && createdAt >= answeredAt - JUST_CREATED_MS
}

function isUsableKey(apiKey: string): boolean {
  return /^[\x21-\x7e]+$/.test(apiKey)
}

function normalizeEmail(email: string): string {
  const address = email.trim().toLowerCase()
  if (address === '') throw new KitError('validation', null, ['Email address is blank'])
  return address
}

function idSegment(id: number): string {
  if (!Number.isSafeInteger(id) || id < 1) throw new KitError('validation', null, [`Invalid Kit id: ${String(id)}`])
  return String(id)
}

function backoffMs(failures: number, retry: RetryOptions): number {
  const ceiling = Math.min(retry.maxMs, retry.baseMs * 2 ** (failures - 1))
  return Math.floor(Math.random() * ceiling)
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return new Promise((resolve) => setTimeout(resolve, ms))
  if (signal.aborted) return Promise.reject(abortError(signal))
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(abortError(signal))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function networkMessage(error: unknown): string {
  let current: unknown = error
  for (let depth = 0; depth < 4 && isObject(current); depth += 1) {
    const code = current.code
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{2,40}$/.test(code)) return `Kit could not be reached (${code})`
    current = current.cause
  }
  return 'Kit could not be reached'
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch {
    return { ok: false }
  }
}

function parseSuccess(status: number, text: string): unknown {
  if (text.trim() === '') return null
  const parsed = parseJson(text)
  if (!parsed.ok) throw unexpected(status, 'answer')
  return parsed.value
}

/** Kit's `warnings` on a 2xx name fields it did not write: a failure for those fields. */
function rejectWarnings(status: number, data: unknown, subscriber: KitSubscriber): void {
  if (!isObject(data)) return
  const warnings = flattenMessages(data.warnings)
  if (warnings.length > 0) throw new KitFieldWarnings(status, warnings, subscriber)
}

/** Kit's error answers come as JSON in several shapes, as plain text, or as an HTML page. */
function errorMessages(text: string, contentType: string): string[] {
  const trimmed = text.trim()
  if (trimmed === '') return []
  const looksJson = /json/i.test(contentType) || trimmed.startsWith('{') || trimmed.startsWith('[')
  if (looksJson) {
    const parsed = parseJson(trimmed)
    if (parsed.ok) return messagesFromJson(parsed.value)
  }
  if (/html|xml/i.test(contentType) || trimmed.startsWith('<')) return []
  return [clip(trimmed.replace(/\s+/g, ' '))]
}

function messagesFromJson(value: unknown): string[] {
  if (!isObject(value)) return flattenMessages(value)
  if ('errors' in value) return flattenMessages(value.errors)
  for (const key of ['error_description', 'message', 'error']) {
    const messages = flattenMessages(value[key])
    if (messages.length > 0) return messages
  }
  return []
}

function flattenMessages(value: unknown): string[] {
  if (typeof value === 'string') {
    const text = value.trim()
    return text === '' ? [] : [clip(text)]
  }
  if (typeof value === 'number' || typeof value === 'boolean') return [String(value)]
  if (Array.isArray(value)) return value.flatMap(flattenMessages)
  if (isObject(value)) {
    return Object.entries(value).flatMap(([key, inner]) => flattenMessages(inner).map((m) => `${key} ${m}`))
  }
  return []
}

function clip(text: string): string {
  return text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : text
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function unexpected(status: number, what: string): KitError {
  return new KitError('unavailable', status, [`Kit answered ${status} with an unexpected ${what}`])
}

function objectOf(value: unknown, status: number, what: string): Record<string, unknown> {
  if (!isObject(value)) throw unexpected(status, what)
  return value
}

function idOf(value: unknown, status: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw unexpected(status, what)
  return value
}

function stringOf(value: unknown, status: number, what: string): string {
  if (typeof value !== 'string') throw unexpected(status, what)
  return value
}

function nullableString(value: unknown): string | null {
  return typeof value === 'string' ? value : null
}

function toTag(value: unknown, status: number): KitTagItem {
  const tag = objectOf(value, status, 'tag')
  return { id: idOf(tag.id, status, 'tag'), name: stringOf(tag.name, status, 'tag') }
}

function toCustomField(value: unknown, status: number): KitCustomFieldItem {
  const field = objectOf(value, status, 'custom field')
  const label = stringOf(field.label, status, 'custom field')
  return {
    id: idOf(field.id, status, 'custom field'),
    key: stringOf(field.key, status, 'custom field'),
    label,
    name: nullableString(field.name) ?? label,
  }
}

/** A legacy form has no `format` (nor `uid`, nor `archived`): that is how Kit's own libraries tell one. */
function toForm(value: unknown, status: number, legacy = false): KitFormItem {
  const form = objectOf(value, status, 'form')
  return {
    id: idOf(form.id, status, 'form'),
    name: stringOf(form.name, status, 'form'),
    type: nullableString(form.type),
    format: legacy ? null : nullableString(form.format),
    archived: !legacy && form.archived === true,
    legacy,
  }
}

const toLegacyForm = (value: unknown, status: number) => toForm(value, status, true)

function toSequence(value: unknown, status: number): KitSequenceItem {
  const sequence = objectOf(value, status, 'sequence')
  return { id: idOf(sequence.id, status, 'sequence'), name: stringOf(sequence.name, status, 'sequence'), hold: sequence.hold === true }
}

function toSubscriber(value: unknown, status: number): KitSubscriber {
  const subscriber = objectOf(value, status, 'subscriber')
  const fields: Record<string, string | null> = {}
  if (isObject(subscriber.fields)) {
    for (const [key, raw] of Object.entries(subscriber.fields)) {
      fields[key] = typeof raw === 'string' ? raw : typeof raw === 'number' ? String(raw) : null
    }
  }
  return {
    id: idOf(subscriber.id, status, 'subscriber'),
    email_address: stringOf(subscriber.email_address, status, 'subscriber'),
    first_name: nullableString(subscriber.first_name),
    state: stringOf(subscriber.state, status, 'subscriber'),
    created_at: stringOf(subscriber.created_at, status, 'subscriber'),
    fields,
  }
}

/** The id, address, name and state of a subscriber in a bulk answer (which carries no fields). */
function toSubscriberSummary(value: unknown, status: number): KitSubscriber {
  const subscriber = objectOf(value, status, 'subscriber')
  return toSubscriber({ ...subscriber, fields: {} }, status)
}

/**
 * The items a bulk answer says Kit refused, each paired with what was sent: the one sent item
 * whose `keys` agree with every one the failure names (Kit nulls an id or an address it could not
 * resolve, and names the refused item under `subscriber`, `tagging`, `subscription`, … — every
 * object in a failure is looked at). A failure that names no single sent item has `item: null`.
 */
function bulkFailures<T>(body: Record<string, unknown>, items: T[], sent: Record<string, unknown>[], keys: string[]): BulkFailure<T>[] {
  if (!Array.isArray(body.failures)) return []
  const failures: BulkFailure<T>[] = []
  for (const failure of body.failures) {
    if (!isObject(failure)) continue
    const named = Object.entries(failure).filter((e): e is [string, Record<string, unknown>] => e[0] !== 'errors' && isObject(e[1]))
    const candidates = new Set<number>()
    for (const [, raw] of named) {
      const given = keys.filter((k) => raw[k] !== undefined && raw[k] !== null)
      if (given.length === 0) continue
      sent.forEach((s, i) => {
        if (given.every((k) => s[k] === (k === 'email_address' && typeof raw[k] === 'string' ? normalizeEmail(raw[k]) : raw[k])))
          candidates.add(i)
      })
    }
    const errors = flattenMessages(failure.errors)
    const item = candidates.size === 1 ? (items[[...candidates][0]!] ?? null) : null
    failures.push({ item, errors: errors.length > 0 ? errors : ['Kit refused an item without saying why'] })
  }
  return failures
}
