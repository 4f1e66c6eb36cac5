// Over ~400 lines: one account model and one dispatcher serve every route; errors, filters, webhooks and the admin API live beside it.
/**
 * Kit stand-in: a stateful HTTP server on loopback that answers like Kit's v4 API
 * as its documents and libraries describe it. Each API key owns an account with its own state;
 * ids are unique across the whole stand-in. Where the sources on Kit disagree
 * ("unsettled"), the variant modelled here is named in a comment.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { KitError, kitTimestamp, notFound, type JsonObject, type Reply } from './errors.ts'
import { ACCOUNT_UTC_OFFSET, SUBSCRIBER_STATES, dateFilter, statusFilter, type SubscriberState } from './filters.ts'
import { adminReply } from './admin.ts'
import { WebhookSender, listensTo, parseWebhook, webhookJson, type StandinWebhook, type StandinWebhookDelivery } from './webhooks.ts'
import { StandinOAuth, type OAuthAnswer, type StandinOAuthOptions } from './oauth.ts'
import {
  OAUTH_ONLY,
  StandinBulk,
  checkSubscriberLimit,
  newBulkAccount,
  type BulkAccount,
  type BulkEndpoint,
  type BulkOperations,
  type StandinAccountSettings,
  type StandinBulkCallback,
} from './bulk.ts'

export type { SubscriberState } from './filters.ts'
export type { StandinWebhook, StandinWebhookDelivery } from './webhooks.ts'
export type { StandinGrant, StandinOAuthOptions, StandinTokenRequest } from './oauth.ts'
export type { StandinAccountSettings, StandinBulkCallback, StandinBulkFailure } from './bulk.ts'

export interface StandinAccountSeed {
  name?: string
  email?: string
  planType?: string
  /** Kit's account answer only requires `user.email`; true leaves `user.id` out. */
  omitUserId?: boolean
}

export interface StandinOptions {
  host?: string
  port?: number
  apiKeys?: string[]
  rateLimit?: { limit: number; windowMs: number }
  /** How long a new subscriber stays out of list endpoints; default 30 s, Kit's typical lag. */
  listLagMs?: number
  /** How long after a 202 (more than ten fields) the fields are applied; default 100 ms. */
  asyncFieldsMs?: number
  /** How long every answer takes (the request is counted and applied when it arrives); default 0. */
  latencyMs?: number
  /** A Kit app for Connect with Kit: its OAuth endpoints answer, and its bearer tokens are accepted. */
  oauth?: StandinOAuthOptions
}

export interface StandinRequest {
  at: number
  method: string
  path: string
  query: string
  /** 0 when the socket was destroyed without an answer. */
  status: number
  /** The API key, or the OAuth access token, the request was sent with. */
  key: string | null
  /** For a request with an OAuth token: the grant it belongs to (tokens rotate, grants stay). */
  grant?: number
}

export interface StandinSubscriber {
  id: number
  email_address: string
  first_name: string | null
  state: SubscriberState
  /** Values keyed by custom field key; keys without a value are absent. */
  fields: Record<string, string>
  tags: Set<number>
  created_at: string
  /**
   * When the state, first name, email or a field value last changed (ISO, ms precision). Kit does
   * not show it in its answers; the `updated_after` / `updated_before` filters compare it.
   */
  updated_at: string
}

/** An email Kit sent to ask a person to confirm (adding an unconfirmed or unsubscribed person to a form). */
export interface StandinConfirmationEmail {
  id: number
  subscriber_id: number
  email_address: string
  form_id: number
  sent_at: string
}

/** What can be changed about a person in Kit's own app. */
export interface StandinSubscriberEdit {
  firstName?: string | null
  email?: string
  /** Values by custom field key; unknown keys are refused. */
  fields?: Record<string, string>
}

/** A subscriber by id, or by email address (any case). */
export type SubscriberRef = number | string

export interface StandinTag {
  id: number
  name: string
  created_at: string
}

export interface StandinCustomField {
  id: number
  key: string
  label: string
  name: string
}

export interface StandinForm {
  id: number
  name: string
  archived: boolean
  /** `hosted`: a landing page; `embed`: a form placed on a site (what Kit's own libraries list). */
  type: 'embed' | 'hosted'
  /**
   * null for hosted landing pages and for Creator Profile / Creator Network forms, which Kit's own
   * libraries leave out of form lists. A legacy form has no format at all (the key is absent).
   */
  format: string | null
  /**
   * A legacy form: listed by `GET /v4/landing_pages` (as `legacy_landing_pages`), never by
   * `GET /v4/forms`, and joined only through `/v4/landing_pages/{id}/subscribers/{subscriber_id}`.
   */
  legacy: boolean
  uid: string
  created_at: string
  subscribers: number[]
  /** The `referrer` each subscriber was added with, by subscriber id (absent when none was sent). */
  referrers: Record<number, string>
}

export interface StandinSequence {
  id: number
  name: string
  active: boolean
  created_at: string
  subscribers: number[]
}

/**
 * The live state of one account. Tests may read it for assertions, or change it to set a scene
 * quietly. To act as the owner in Kit's own app (a person who bounced, a name corrected) use
 * changeState / editSubscriber (or the admin API): they move updated_at and fire webhooks.
 */
export interface StandinAccountState {
  id: number
  userId: number | null
  name: string
  email: string
  planType: string
  created_at: string
  subscribers: StandinSubscriber[]
  tags: StandinTag[]
  customFields: StandinCustomField[]
  forms: StandinForm[]
  sequences: StandinSequence[]
  /** Legacy webhooks registered through `/v4/webhooks`. */
  webhooks: StandinWebhook[]
  confirmationEmails: StandinConfirmationEmail[]
}

export interface StandinSeedData {
  tags?: string[]
  /** Custom field labels. */
  customFields?: string[]
  /** `type` defaults to `hosted` for a null format, else `embed`; `legacy` forms have no format. */
  forms?: { name: string; archived?: boolean; format?: string | null; type?: 'embed' | 'hosted'; legacy?: boolean }[]
  sequences?: { name: string; active?: boolean }[]
}

/**
 * The next answer: a given one (Kit not consulted), `network` (the connection drops before Kit
 * does anything), or `lost-answer` (Kit applies the request, then the connection drops before its
 * answer arrives: what a timed-out request that Kit did carry out looks like).
 */
export type InjectedResponse = { status: number; body: string; contentType?: string } | 'network' | 'lost-answer'

export interface KitStandin {
  /** Base URL without `/v4`, e.g. http://127.0.0.1:41234 */
  url: string
  requests: StandinRequest[]
  addKey(key: string, seed?: StandinAccountSeed): void
  revokeKey(key: string): void
  restoreKey(key: string): void
  seed(key: string, data: StandinSeedData): void
  account(key: string): StandinAccountState
  injectNext(count: number, response: InjectedResponse): void
  setRateLimit(limit: number, windowMs: number): void
  /** What an owner does in Kit's own UI: renames a tag (its id stays). */
  renameTag(key: string, tagId: number, name: string): void
  /** Deletes a tag in Kit's own UI; its subscribers lose it. */
  deleteTag(key: string, tagId: number): void
  /** Archives a form in Kit's own UI: it leaves the active list and refuses new subscribers (404). */
  archiveForm(key: string, formId: number): void
  /** Deletes a form in Kit's own UI. */
  deleteForm(key: string, formId: number): void
  /**
   * A subscriber created in Kit by someone else (a Kit form, Kit's UI, another integration): a
   * fresh write, so list endpoints lag it like any other.
   */
  createSubscriber(
    key: string,
    subscriber: { email: string; firstName?: string; tags?: string[]; state?: SubscriberState },
  ): StandinSubscriber
  /** Finds a subscriber at once (any state, no list lag); throws when there is none. */
  subscriber(key: string, ref: SubscriberRef): StandinSubscriber
  /**
   * A state change made in Kit's app: the person unsubscribes (`cancelled`), bounces, complains,
   * or confirms (`active`). Fires the matching webhooks; no change, no webhook.
   */
  changeState(key: string, ref: SubscriberRef, state: SubscriberState): StandinSubscriber
  /** A first name, email or field value changed in Kit's app (field changes fire `field_value_updated`). */
  editSubscriber(key: string, ref: SubscriberRef, edit: StandinSubscriberEdit): StandinSubscriber
  /** Every webhook delivery attempted, in order. */
  readonly webhookDeliveries: StandinWebhookDelivery[]
  /** Resolves once every webhook delivery under way has its answer (or none). */
  settleWebhooks(): Promise<void>
  /** The Kit app (with `oauth` in the options): its grants, token requests and settings. */
  readonly oauth: StandinOAuth | null
  /**
   * The account's plan and bulk settings (subscriber limit, queued-bytes limit, queued work's
   * delay, bulk items made to fail), after applying `change`; with the bytes queued now.
   */
  accountSettings(key: string, change?: Partial<StandinAccountSettings>): StandinAccountSettings & { queuedBytes: number }
  /** Every POST made to a bulk request's `callback_url`, in order. */
  readonly bulkCallbacks: StandinBulkCallback[]
  /** Resolves once every queued bulk request is applied and its callback answered (or not). */
  settleBulk(): Promise<void>
  close(): Promise<void>
}

interface Account {
  key: string
  state: StandinAccountState
  revoked: boolean
  /** Receipt times of the requests counted against the rate limit. */
  requestTimes: number[]
  /** Creation time in ms, by subscriber id (created_at has second precision). */
  createdMs: Map<number, number>
  /** When a subscriber joined a tag, form or sequence, keyed by joinKey(). */
  joinedAt: Map<string, string>
  /** Plan and bulk settings, and the bulk queue. */
  bulk: BulkAccount
}

interface Context {
  account: Account
  params: number[]
  query: URLSearchParams
  body: JsonObject
  /** The request body's size in bytes (what Kit's bulk queue counts). */
  bodyBytes: number
  now: number
}

type Handler = (ctx: Context) => Reply

interface Route {
  method: string
  pattern: RegExp
  handler: Handler
}

const JSON_TYPE = 'application/json; charset=utf-8'
/** The stand-in's own routes (outside Kit's API): what an owner does in Kit's app. */
const ADMIN_PREFIX = '/_admin/'
/** The legacy webhook event a change to each state fires. */
const STATE_EVENTS: Partial<Record<SubscriberState, string>> = {
  active: 'subscriber.subscriber_activate',
  cancelled: 'subscriber.subscriber_unsubscribe',
  bounced: 'subscriber.subscriber_bounce',
  complained: 'subscriber.subscriber_complain',
}
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
/** Kit's bulk namespace: OAuth tokens only. */
const BULK_PATH = /^\/v4\/bulk(?:\/|$)/
const MAX_SYNC_FIELDS = 10
const DEFAULT_PER_PAGE = 500
const MAX_PER_PAGE = 1000
const TIMEZONE = { name: 'America/New_York', friendly_name: 'Eastern Time (US & Canada)', utc_offset: ACCOUNT_UTC_OFFSET }

/**
 * Every cursor starts with these bytes, which base64-encode to "+/+/", and is padded so
 * it ends in "==". A client that forgets to URL-encode a cursor turns "+" into a space
 * and gets 400 Invalid cursor.
 */
const CURSOR_PREFIX = Buffer.from([0xfb, 0xff, 0xbf])

export function encodeCursor(id: number): string {
  let payload = String(id)
  while ((CURSOR_PREFIX.length + payload.length) % 3 !== 1) payload += '.'
  return Buffer.concat([CURSOR_PREFIX, Buffer.from(payload, 'latin1')]).toString('base64')
}

function decodeCursor(cursor: string): number {
  const invalid = new KitError(400, ['Invalid cursor'])
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(cursor)) throw invalid
  const bytes = Buffer.from(cursor, 'base64')
  if (bytes.toString('base64') !== cursor) throw invalid
  if (!bytes.subarray(0, CURSOR_PREFIX.length).equals(CURSOR_PREFIX)) throw invalid
  const match = /^(\d+)\.*$/.exec(bytes.subarray(CURSOR_PREFIX.length).toString('latin1'))
  if (!match?.[1]) throw invalid
  return Number(match[1])
}

/** Kit's key derivation: lower-case ASCII, runs of anything else become "_", trimmed. */
export function deriveFieldKey(label: string): string {
  return label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
}

function paginate<T extends { id: number }>(all: readonly T[], query: URLSearchParams): { items: T[]; pagination: JsonObject } {
  const rawPerPage = query.get('per_page')
  let perPage = DEFAULT_PER_PAGE
  if (rawPerPage !== null) {
    if (!/^\d+$/.test(rawPerPage) || Number(rawPerPage) < 1) throw new KitError(400, ['Invalid per_page'])
    perPage = Math.min(Number(rawPerPage), MAX_PER_PAGE)
  }
  const after = query.get('after') || null
  const before = query.get('before') || null
  if (after !== null && before !== null) throw new KitError(400, ['Use either after or before, not both'])

  const sorted = [...all].sort((a, b) => a.id - b.id)
  let items: T[]
  let hasPrevious: boolean
  let hasNext: boolean
  if (before !== null) {
    const beforeId = decodeCursor(before)
    const earlier = sorted.filter((item) => item.id < beforeId)
    items = earlier.slice(Math.max(0, earlier.length - perPage))
    hasPrevious = earlier.length > items.length
    hasNext = sorted.some((item) => item.id >= beforeId)
  } else {
    const afterId = after === null ? null : decodeCursor(after)
    const later = afterId === null ? sorted : sorted.filter((item) => item.id > afterId)
    items = later.slice(0, perPage)
    hasPrevious = afterId !== null && sorted.some((item) => item.id <= afterId)
    hasNext = later.length > items.length
  }
  const first = items[0]
  const last = items.at(-1)
  return {
    items,
    pagination: {
      has_previous_page: hasPrevious,
      has_next_page: hasNext,
      start_cursor: first ? encodeCursor(first.id) : null,
      end_cursor: last ? encodeCursor(last.id) : null,
      per_page: perPage,
    },
  }
}

/** What Kit and the admin API both show of a subscriber before their own fields. */
export function subscriberBasics(subscriber: StandinSubscriber): JsonObject {
  const { id, first_name, email_address, state, created_at } = subscriber
  return { id, first_name, email_address, state, created_at }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function parseBody(raw: string): JsonObject {
  if (raw.trim() === '') return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new KitError(400, ['Invalid JSON'])
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new KitError(400, ['Request body must be a JSON object'])
  }
  return parsed as JsonObject
}

function presentedKey(req: IncomingMessage): { value: string; kind: 'api_key' | 'oauth' } | null {
  const apiKey = req.headers['x-kit-api-key']
  if (typeof apiKey === 'string' && apiKey !== '') return { value: apiKey, kind: 'api_key' }
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
  if (bearer?.[1]) return { value: bearer[1], kind: 'oauth' }
  return null
}

export function isEmailAddress(value: unknown): value is string {
  return typeof value === 'string' && EMAIL_PATTERN.test(value)
}

function requireEmail(body: JsonObject): string {
  const email = body.email_address
  if (!isEmailAddress(email)) throw new KitError(422, ['Email address is invalid'])
  return email
}

function optionalFirstName(body: JsonObject): string | null | undefined {
  const value = body.first_name
  if (value === undefined || value === null || typeof value === 'string') return value
  throw new KitError(422, ['First name is invalid'])
}

/** Kit's sequence endpoints nest their error messages in arrays. */
function nested(error: unknown): unknown {
  if (!(error instanceof KitError) || typeof error.errors === 'string') return error
  return new KitError(
    error.status,
    error.errors.map((message) => (Array.isArray(message) ? message : [message])),
  )
}

/** Kit's answer to a custom field label the account already has. */
const LABEL_TAKEN = 'Label has already been taken'

function requireLabel(body: JsonObject): string {
  const label = typeof body.label === 'string' ? body.label.trim() : ''
  // Unsettled error shape: this endpoint nests arrays inside `errors`.
  if (label === '') throw new KitError(422, [["Label can't be blank"]])
  return label
}

function joinKey(kind: 'tag' | 'form' | 'sequence', groupId: number, subscriberId: number): string {
  return `${kind}:${groupId}:${subscriberId}`
}

function withWarnings(body: JsonObject, warnings: string[]): JsonObject {
  return warnings.length > 0 ? { ...body, warnings } : body
}

class StandinServer implements KitStandin {
  url = ''
  readonly requests: StandinRequest[] = []
  private readonly accounts = new Map<string, Account>()
  private readonly injections: InjectedResponse[] = []
  private readonly server: Server
  private readonly routes: Route[]
  private readonly listLagMs: number
  private readonly asyncFieldsMs: number
  private readonly latencyMs: number
  private readonly pendingWrites = new Set<NodeJS.Timeout>()
  private readonly webhookSender = new WebhookSender()
  private readonly bulk = new StandinBulk()
  private rateLimit: { limit: number; windowMs: number }
  private lastId = 1000
  readonly oauth: StandinOAuth | null

  constructor(options: StandinOptions) {
    this.listLagMs = options.listLagMs ?? 30_000
    this.asyncFieldsMs = options.asyncFieldsMs ?? 100
    this.latencyMs = options.latencyMs ?? 0
    this.rateLimit = options.rateLimit ?? { limit: 120, windowMs: 60_000 }
    for (const key of options.apiKeys ?? ['kit_test_key']) this.addKey(key)
    this.oauth = options.oauth ? new StandinOAuth(options.oauth, () => [...this.accounts.keys()][0] ?? '') : null
    this.routes = this.buildRoutes()
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.fail(res, error))
    })
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    const address = this.server.address() as AddressInfo
    const hostPart = address.address.includes(':') ? `[${address.address}]` : address.address
    this.url = `http://${hostPart}:${address.port}`
  }

  addKey(key: string, seed: StandinAccountSeed = {}): void {
    if (this.accounts.has(key)) throw new Error(`Stand-in key already exists: ${key}`)
    const now = kitTimestamp(Date.now())
    this.accounts.set(key, {
      key,
      state: {
        id: this.nextId(),
        userId: seed.omitUserId ? null : this.nextId(),
        name: seed.name ?? 'Stand-in Creator',
        email: seed.email ?? 'creator@example.com',
        planType: seed.planType ?? 'creator',
        created_at: now,
        subscribers: [],
        tags: [],
        customFields: [],
        forms: [],
        sequences: [],
        webhooks: [],
        confirmationEmails: [],
      },
      revoked: false,
      requestTimes: [],
      createdMs: new Map(),
      joinedAt: new Map(),
      bulk: newBulkAccount(),
    })
  }

  revokeKey(key: string): void {
    this.requireAccount(key).revoked = true
  }

  restoreKey(key: string): void {
    this.requireAccount(key).revoked = false
  }

  seed(key: string, data: StandinSeedData): void {
    const account = this.requireAccount(key)
    for (const name of data.tags ?? []) this.findOrCreateTag(account, name)
    for (const label of data.customFields ?? []) this.findOrCreateField(account, label)
    for (const form of data.forms ?? []) {
      const format = form.legacy ? null : form.format === undefined ? 'inline' : form.format
      this.createForm(account, {
        name: form.name,
        archived: form.legacy ? false : (form.archived ?? false),
        format,
        type: form.type ?? (format === null && !form.legacy ? 'hosted' : 'embed'),
        legacy: form.legacy ?? false,
      })
    }
    for (const sequence of data.sequences ?? []) this.createSequence(account, sequence.name, sequence.active ?? true)
  }

  account(key: string): StandinAccountState {
    return this.requireAccount(key).state
  }

  injectNext(count: number, response: InjectedResponse): void {
    if (!Number.isInteger(count) || count < 1) throw new Error('injectNext count must be a positive integer')
    for (let i = 0; i < count; i++) this.injections.push(response)
  }

  setRateLimit(limit: number, windowMs: number): void {
    this.rateLimit = { limit, windowMs }
  }

  renameTag(key: string, tagId: number, name: string): void {
    const tag = this.requireAccount(key).state.tags.find((candidate) => candidate.id === tagId)
    if (!tag) throw new Error(`Unknown stand-in tag: ${tagId}`)
    tag.name = name
  }

  deleteTag(key: string, tagId: number): void {
    const account = this.requireAccount(key)
    const index = account.state.tags.findIndex((candidate) => candidate.id === tagId)
    if (index < 0) throw new Error(`Unknown stand-in tag: ${tagId}`)
    account.state.tags.splice(index, 1)
    for (const subscriber of account.state.subscribers) subscriber.tags.delete(tagId)
  }

  archiveForm(key: string, formId: number): void {
    this.formOf(key, formId).archived = true
  }

  deleteForm(key: string, formId: number): void {
    const forms = this.requireAccount(key).state.forms
    forms.splice(forms.indexOf(this.formOf(key, formId)), 1)
  }

  private formOf(key: string, formId: number): StandinForm {
    const form = this.requireAccount(key).state.forms.find((candidate) => candidate.id === formId)
    if (!form) throw new Error(`Unknown stand-in form: ${formId}`)
    return form
  }

  createSubscriber(key: string, input: { email: string; firstName?: string; tags?: string[]; state?: SubscriberState }): StandinSubscriber {
    const account = this.requireAccount(key)
    const now = Date.now()
    const subscriber: StandinSubscriber = {
      id: this.nextId(),
      email_address: input.email.trim().toLowerCase(),
      first_name: input.firstName ?? null,
      state: input.state ?? 'active',
      fields: {},
      tags: new Set((input.tags ?? []).map((name) => this.findOrCreateTag(account, name).tag.id)),
      created_at: kitTimestamp(now),
      updated_at: new Date(now).toISOString(),
    }
    account.state.subscribers.push(subscriber)
    account.createdMs.set(subscriber.id, now)
    return subscriber
  }

  subscriber(key: string, ref: SubscriberRef): StandinSubscriber {
    const account = this.requireAccount(key)
    const subscriber =
      typeof ref === 'number' ? account.state.subscribers.find((candidate) => candidate.id === ref) : this.findByEmail(account, ref)
    if (!subscriber) throw new Error(`Unknown stand-in subscriber: ${ref}`)
    return subscriber
  }

  changeState(key: string, ref: SubscriberRef, state: SubscriberState): StandinSubscriber {
    if (!SUBSCRIBER_STATES.includes(state)) throw new Error(`Unknown subscriber state: ${String(state)}`)
    const subscriber = this.subscriber(key, ref)
    this.transition(this.requireAccount(key), subscriber, state, Date.now())
    return subscriber
  }

  editSubscriber(key: string, ref: SubscriberRef, edit: StandinSubscriberEdit): StandinSubscriber {
    const account = this.requireAccount(key)
    const subscriber = this.subscriber(key, ref)
    const body: JsonObject = {}
    if (edit.firstName !== undefined) body.first_name = edit.firstName
    if (edit.email !== undefined) body.email_address = edit.email
    if (edit.fields !== undefined) body.fields = edit.fields
    const fields = this.resolveFields(account, body.fields)
    if (fields.warnings.length > 0) throw new KitError(422, fields.warnings)
    this.applyEdit(account, subscriber, body, fields.values, Date.now())
    return subscriber
  }

  get webhookDeliveries(): StandinWebhookDelivery[] {
    return this.webhookSender.deliveries
  }

  settleWebhooks(): Promise<void> {
    return this.webhookSender.settle()
  }

  accountSettings(key: string, change: Partial<StandinAccountSettings> = {}): StandinAccountSettings & { queuedBytes: number } {
    const { bulk } = this.requireAccount(key)
    Object.assign(bulk.settings, change)
    return { ...bulk.settings, failInBulk: [...bulk.settings.failInBulk], queuedBytes: bulk.queuedBytes }
  }

  get bulkCallbacks(): StandinBulkCallback[] {
    return this.bulk.callbacks
  }

  settleBulk(): Promise<void> {
    return this.bulk.settle()
  }

  async close(): Promise<void> {
    for (const timer of this.pendingWrites) clearTimeout(timer)
    this.pendingWrites.clear()
    await this.bulk.close()
    await this.webhookSender.close()
    const closed = new Promise<void>((resolve, reject) => {
      this.server.close((error) => (error ? reject(error) : resolve()))
    })
    this.server.closeAllConnections()
    await closed
  }

  private nextId(): number {
    this.lastId += 1
    return this.lastId
  }

  private requireAccount(key: string): Account {
    const account = this.accounts.get(key)
    if (!account) throw new Error(`Unknown stand-in key: ${key}`)
    return account
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin.invalid')
    const key = presentedKey(req)
    if (url.pathname.startsWith(ADMIN_PREFIX)) {
      this.answerAdmin(res, key?.value ?? null, req.method ?? 'GET', url.pathname, await readBody(req))
      return
    }
    const entry: StandinRequest = {
      at: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search.slice(1),
      status: 0,
      key: key?.value ?? null,
    }
    this.requests.push(entry)
    const rawBody = await readBody(req)
    if (url.pathname.startsWith('/v4/oauth/')) {
      this.answerOAuth(req, res, entry, url, rawBody)
      return
    }

    const injected = this.injections.shift()
    if (injected === 'network') {
      req.socket.destroy()
      return
    }
    if (injected && injected !== 'lost-answer') {
      this.send(res, entry, injected.status, injected.body, injected.contentType ?? JSON_TYPE)
      return
    }

    const bearer =
      key?.kind === 'oauth' ? (this.oauth?.checkBearer(key.value, entry.at) ?? { refused: 'The access token is invalid' as const }) : null
    if (bearer && 'refused' in bearer) {
      this.sendJson(res, entry, { status: 401, body: { errors: [bearer.refused] } })
      return
    }
    const grant = bearer?.grant ?? null
    const account = grant ? this.accounts.get(grant.account) : key ? this.accounts.get(key.value) : undefined
    if (!key || !account || account.revoked) {
      const message = key?.kind === 'oauth' ? 'The access token is invalid' : 'The API key is invalid'
      this.sendJson(res, entry, { status: 401, body: { errors: [message] } })
      return
    }
    if (grant) entry.grant = grant.id

    // An OAuth grant has its own budget (Kit: 600 per 60 s per token), an API key its account's.
    if (!(grant ? this.oauth!.admit(grant, entry.at) : this.admit(account, entry.at))) {
      // Kit's 429: plain text, no Retry-After header.
      this.send(res, entry, 429, 'Retry later', 'text/plain; charset=utf-8')
      return
    }
    // Counted like any request, then refused: Kit's bulk endpoints take OAuth tokens only.
    if (!grant && BULK_PATH.test(url.pathname)) {
      this.sendJson(res, entry, { status: 401, body: { errors: [OAUTH_ONLY] } })
      return
    }

    const reply = this.dispatch(account, entry.method, url, rawBody)
    if (injected === 'lost-answer') {
      entry.status = reply.status
      req.socket.destroy()
      return
    }
    this.sendJson(res, entry, reply)
  }

  /** Kit's OAuth endpoints: never injected, never counted against an API budget. */
  private answerOAuth(req: IncomingMessage, res: ServerResponse, entry: StandinRequest, url: URL, rawBody: string): void {
    const route = `${req.method ?? 'GET'} ${url.pathname.replace(/\/+$/, '')}`
    let answer: OAuthAnswer
    if (!this.oauth) answer = { status: 404, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify({ errors: ['Not Found'] }) }
    else if (route === 'GET /v4/oauth/authorize') answer = this.oauth.authorize(url.searchParams, entry.at)
    else if (route === 'POST /v4/oauth/token') answer = this.oauth.token(req, rawBody, entry.at)
    else if (route === 'POST /v4/oauth/revoke') answer = this.oauth.revoke(req, rawBody)
    else answer = { status: 404, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify({ errors: ['Not Found'] }) }
    entry.status = answer.status
    res.writeHead(answer.status, answer.headers)
    res.end(answer.body)
  }

  /** The admin API (admin.ts): unrecorded, unlimited, never injected. */
  private answerAdmin(res: ServerResponse, key: string | null, method: string, pathname: string, rawBody: string): void {
    let reply: Reply
    try {
      if (key === null || !this.accounts.has(key)) throw new KitError(401, ['The API key is invalid'])
      reply = adminReply(this, key, method, pathname, parseBody(rawBody))
    } catch (error) {
      if (!(error instanceof KitError)) throw error
      reply = { status: error.status, body: { errors: error.errors } }
    }
    res.writeHead(reply.status, { 'content-type': JSON_TYPE })
    res.end(JSON.stringify(reply.body))
  }

  /** Rolling window counted at receipt; rejected requests do not use up budget. */
  private admit(account: Account, now: number): boolean {
    const windowStart = now - this.rateLimit.windowMs
    account.requestTimes = account.requestTimes.filter((time) => time > windowStart)
    if (account.requestTimes.length >= this.rateLimit.limit) return false
    account.requestTimes.push(now)
    return true
  }

  private dispatch(account: Account, method: string, url: URL, rawBody: string): Reply {
    try {
      for (const route of this.routes) {
        if (route.method !== method) continue
        const match = route.pattern.exec(url.pathname)
        if (!match) continue
        return route.handler({
          account,
          params: match.slice(1).map(Number),
          query: url.searchParams,
          body: parseBody(rawBody),
          bodyBytes: Buffer.byteLength(rawBody),
          now: Date.now(),
        })
      }
      throw notFound()
    } catch (error) {
      if (error instanceof KitError) return { status: error.status, body: { errors: error.errors } }
      throw error
    }
  }

  private sendJson(res: ServerResponse, entry: StandinRequest, reply: Reply): void {
    if (reply.body === undefined) {
      this.send(res, entry, reply.status, '', null)
      return
    }
    this.send(res, entry, reply.status, JSON.stringify(reply.body), JSON_TYPE)
  }

  private send(res: ServerResponse, entry: StandinRequest, status: number, body: string, contentType: string | null): void {
    entry.status = status
    const answer = () => {
      res.writeHead(status, contentType ? { 'content-type': contentType } : {})
      res.end(body)
    }
    if (this.latencyMs > 0) setTimeout(answer, this.latencyMs)
    else answer()
  }

  private fail(res: ServerResponse, error: unknown): void {
    console.error('Kit stand-in failed to answer a request:', error)
    if (res.headersSent) {
      res.destroy()
      return
    }
    res.writeHead(500, { 'content-type': JSON_TYPE })
    res.end(JSON.stringify({ errors: ['Internal Server Error'] }))
  }

  private buildRoutes(): Route[] {
    const route = (method: string, path: string, handler: Handler): Route => ({
      method,
      pattern: new RegExp(`^/v4${path.replaceAll(':id', '(\\d+)')}/?$`),
      handler,
    })
    return [
      route('GET', '/account', (ctx) => this.getAccount(ctx)),

      route('GET', '/subscribers', (ctx) => this.listSubscribers(ctx)),
      route('POST', '/subscribers', (ctx) => this.upsertSubscriber(ctx)),
      route('GET', '/subscribers/:id', (ctx) => ({
        status: 200,
        body: { subscriber: this.subscriberJson(ctx.account, this.subscriberById(ctx.account, ctx.params[0])) },
      })),
      route('PUT', '/subscribers/:id', (ctx) => this.updateSubscriber(ctx)),
      route('POST', '/subscribers/:id/unsubscribe', (ctx) => this.unsubscribeById(ctx)),

      route('GET', '/tags', (ctx) =>
        this.listOf(ctx, 'tags', ctx.account.state.tags, (tag) => ({ id: tag.id, name: tag.name, created_at: tag.created_at })),
      ),
      route('POST', '/tags', (ctx) => this.createTag(ctx)),
      route('GET', '/tags/:id/subscribers', (ctx) => this.listTagSubscribers(ctx)),
      route('POST', '/tags/:id/subscribers', (ctx) => this.tag(ctx, () => this.subscriberByEmail(ctx.account, ctx.body))),
      route('POST', '/tags/:id/subscribers/:id', (ctx) => this.tag(ctx, () => this.subscriberById(ctx.account, ctx.params[1]))),
      route('DELETE', '/tags/:id/subscribers', (ctx) => this.untag(ctx, () => this.subscriberByEmail(ctx.account, ctx.body))),
      route('DELETE', '/tags/:id/subscribers/:id', (ctx) => this.untag(ctx, () => this.subscriberById(ctx.account, ctx.params[1]))),

      route('GET', '/custom_fields', (ctx) =>
        this.listOf(ctx, 'custom_fields', ctx.account.state.customFields, (field) => this.fieldJson(field)),
      ),
      route('POST', '/custom_fields', (ctx) => this.createField(ctx)),
      route('PUT', '/custom_fields/:id', (ctx) => this.renameField(ctx)),

      route('GET', '/forms', (ctx) => this.listForms(ctx)),
      route('POST', '/forms/:id/subscribers', (ctx) => this.addToForm(ctx, () => this.subscriberByEmail(ctx.account, ctx.body))),
      route('POST', '/forms/:id/subscribers/:id', (ctx) => this.addToForm(ctx, () => this.subscriberById(ctx.account, ctx.params[1]))),
      route('GET', '/landing_pages', (ctx) => this.listLegacyForms(ctx)),
      route('POST', '/landing_pages/:id/subscribers/:id', (ctx) => this.addToLegacyForm(ctx)),

      route('GET', '/webhooks', (ctx) =>
        this.listOf(ctx, 'webhooks', ctx.account.state.webhooks, (webhook) => webhookJson(ctx.account.state.id, webhook)),
      ),
      route('POST', '/webhooks', (ctx) => this.createWebhook(ctx)),
      route('DELETE', '/webhooks/:id', (ctx) => this.deleteWebhook(ctx)),

      route('GET', '/sequences', (ctx) =>
        this.listOf(ctx, 'sequences', ctx.account.state.sequences, (sequence) => this.sequenceJson(sequence)),
      ),
      route('POST', '/sequences/:id/subscribers', (ctx) => this.addToSequence(ctx, () => this.subscriberByEmail(ctx.account, ctx.body))),
      route('POST', '/sequences/:id/subscribers/:id', (ctx) =>
        this.addToSequence(ctx, () => this.subscriberById(ctx.account, ctx.params[1])),
      ),

      route('POST', '/bulk/subscribers', (ctx) => this.bulkReply(ctx, 'create_subscribers', '/v4/bulk/subscribers')),
      route('POST', '/bulk/tags/subscribers', (ctx) => this.bulkReply(ctx, 'tag_subscribers', '/v4/bulk/tags/subscribers')),
      route('DELETE', '/bulk/tags/subscribers', (ctx) => this.bulkReply(ctx, 'untag_subscribers', '/v4/bulk/tags/subscribers')),
      route('POST', '/bulk/custom_fields/subscribers', (ctx) =>
        this.bulkReply(ctx, 'custom_field_values', '/v4/bulk/custom_fields/subscribers'),
      ),
      route('POST', '/bulk/forms/subscribers', (ctx) => this.bulkReply(ctx, 'add_to_forms', '/v4/bulk/forms/subscribers')),
    ]
  }

  private listOf<T extends { id: number }>(ctx: Context, name: string, items: readonly T[], toJson: (item: T) => unknown): Reply {
    const page = paginate(items, ctx.query)
    return { status: 200, body: { [name]: page.items.map(toJson), pagination: page.pagination } }
  }

  private getAccount({ account }: Context): Reply {
    const { state } = account
    return {
      status: 200,
      body: {
        user: state.userId === null ? { email: state.email } : { email: state.email, id: state.userId },
        account: {
          id: state.id,
          name: state.name,
          plan_type: state.planType,
          primary_email_address: state.email,
          created_at: state.created_at,
          timezone: TIMEZONE,
        },
      },
    }
  }

  // Subscribers

  private subscriberJson(account: Account, subscriber: StandinSubscriber): JsonObject {
    return {
      ...subscriberBasics(subscriber),
      fields: Object.fromEntries(account.state.customFields.map((field) => [field.key, subscriber.fields[field.key] ?? null])),
    }
  }

  private subscriberById(account: Account, id: number | undefined): StandinSubscriber {
    const subscriber = account.state.subscribers.find((candidate) => candidate.id === id)
    if (!subscriber) throw notFound()
    return subscriber
  }

  private findByEmail(account: Account, email: string): StandinSubscriber | undefined {
    const wanted = email.toLowerCase()
    return account.state.subscribers.find((candidate) => candidate.email_address.toLowerCase() === wanted)
  }

  private subscriberByEmail(account: Account, body: JsonObject): StandinSubscriber {
    if (typeof body.email_address !== 'string' || body.email_address === '') throw new KitError(422, ['Email address is invalid'])
    const subscriber = this.findByEmail(account, body.email_address)
    if (!subscriber) throw notFound()
    return subscriber
  }

  /** Listing endpoints are eventually consistent: recently created subscribers are not listed yet. */
  private listable(account: Account, subscriber: StandinSubscriber, now: number): boolean {
    const createdMs = account.createdMs.get(subscriber.id)
    return createdMs === undefined || now - createdMs >= this.listLagMs
  }

  /**
   * Splits sent field values into known ones (by key) and warnings for unknown keys,
   * the current Kit behaviour (2xx with a top-level `warnings` array).
   */
  private resolveFields(account: Account, raw: unknown): { values: Record<string, string>; warnings: string[]; sent: number } {
    if (raw === undefined || raw === null) return { values: {}, warnings: [], sent: 0 }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new KitError(422, ['Fields must be an object'])
    const values: Record<string, string> = {}
    const warnings: string[] = []
    const entries = Object.entries(raw as JsonObject)
    // Values are strings in Kit's schema; null is not one (a field is cleared with "").
    const invalid = entries.filter(([, value]) => typeof value !== 'string').map(([key]) => `Custom field '${key}' must be a string`)
    if (invalid.length > 0) throw new KitError(422, invalid)
    for (const [key, value] of entries as [string, string][]) {
      if (!account.state.customFields.some((field) => field.key === key)) {
        warnings.push(`Custom field '${key}' does not exist`)
        continue
      }
      values[key] = value
    }
    return { values, warnings, sent: entries.length }
  }

  private listSubscribers(ctx: Context): Reply {
    const matchesStatus = statusFilter(ctx.query)
    const matchesDates = dateFilter(ctx.query)
    const email = ctx.query.get('email_address')?.toLowerCase()
    const visible = ctx.account.state.subscribers.filter(
      (subscriber) =>
        (email === undefined || subscriber.email_address.toLowerCase() === email) &&
        this.listable(ctx.account, subscriber, ctx.now) &&
        matchesStatus(subscriber) &&
        (matchesDates === null ||
          matchesDates({ createdMs: Date.parse(subscriber.created_at), updatedMs: Date.parse(subscriber.updated_at) })),
    )
    return this.listOf(ctx, 'subscribers', visible, (subscriber) => this.subscriberJson(ctx.account, subscriber))
  }

  /**
   * Upsert by email. Unsettled: whether `fields` are written when the subscriber already
   * exists. Modelled variant: they are not (only first_name is updated). More than 10 fields
   * answer 202; on create they are applied `asyncFieldsMs` later (the answer does not show them
   * yet), on the existing branch still not written.
   */
  private upsertSubscriber({ account, body, now }: Context): Reply {
    const email = requireEmail(body)
    const firstName = optionalFirstName(body)
    const state = body.state ?? 'active'
    if (!SUBSCRIBER_STATES.includes(state as SubscriberState)) throw new KitError(422, ['State is invalid'])
    const fields = this.resolveFields(account, body.fields)

    const deferred = fields.sent > MAX_SYNC_FIELDS
    /**
     * Kit documents the plan's subscriber limit (403) on its bulk create only; the stand-in holds
     * this route to it too, the stricter reading (off unless a test sets `subscriberLimit`).
     */
    if (account.bulk.settings.subscriberLimit !== null && !this.findByEmail(account, email)) {
      checkSubscriberLimit(account.state, account.bulk.settings, 1)
    }
    const { subscriber, created } = this.upsertByEmail(
      account,
      { email, firstName, state: state as SubscriberState, fields: deferred ? {} : fields.values },
      now,
    )
    if (created && deferred) this.applyLater(account, subscriber, fields.values)
    const status = deferred ? 202 : created ? 201 : 200
    return { status, body: withWarnings({ subscriber: this.subscriberJson(account, subscriber) }, fields.warnings) }
  }

  /**
   * The upsert by email shared by `POST /v4/subscribers` and `POST /v4/bulk/subscribers`. Kit never
   * changes the state of an existing subscriber here (a cancelled one stays cancelled); a sent
   * first name replaces theirs. A new one is created in the given state with the given fields.
   */
  private upsertByEmail(
    account: Account,
    input: { email: string; firstName: string | null | undefined; state: SubscriberState; fields?: Record<string, string> },
    now: number,
  ): { subscriber: StandinSubscriber; created: boolean } {
    const existing = this.findByEmail(account, input.email)
    if (existing) {
      if (input.firstName !== undefined && input.firstName !== existing.first_name) {
        existing.first_name = input.firstName
        this.touch(existing, now)
      }
      return { subscriber: existing, created: false }
    }
    const subscriber: StandinSubscriber = {
      id: this.nextId(),
      email_address: input.email,
      first_name: input.firstName ?? null,
      state: input.state,
      fields: input.fields ?? {},
      tags: new Set(),
      created_at: kitTimestamp(now),
      updated_at: new Date(now).toISOString(),
    }
    account.state.subscribers.push(subscriber)
    account.createdMs.set(subscriber.id, now)
    if (subscriber.state === 'active') this.fire(account, 'subscriber.subscriber_activate', subscriber)
    return { subscriber, created: true }
  }

  private applyLater(account: Account, subscriber: StandinSubscriber, values: Record<string, string>): void {
    const timer = setTimeout(() => {
      this.pendingWrites.delete(timer)
      this.writeFields(account, subscriber, values, Date.now())
    }, this.asyncFieldsMs)
    this.pendingWrites.add(timer)
  }

  private updateSubscriber({ account, params, body, now }: Context): Reply {
    const subscriber = this.subscriberById(account, params[0])
    const fields = this.resolveFields(account, body.fields)
    this.applyEdit(account, subscriber, body, fields.values, now)
    return { status: 200, body: withWarnings({ subscriber: this.subscriberJson(account, subscriber) }, fields.warnings) }
  }

  /** A first name, email and field values (already resolved) written together, as PUT and Kit's app do. */
  private applyEdit(account: Account, subscriber: StandinSubscriber, body: JsonObject, values: Record<string, string>, now: number): void {
    const firstName = optionalFirstName(body)
    let email: string | undefined
    if (body.email_address !== undefined) {
      email = requireEmail(body)
      const holder = this.findByEmail(account, email)
      if (holder && holder.id !== subscriber.id) throw new KitError(422, ['Email address has already been taken'])
    }
    let changed = false
    if (email !== undefined && email !== subscriber.email_address) {
      subscriber.email_address = email
      changed = true
    }
    if (firstName !== undefined && firstName !== subscriber.first_name) {
      subscriber.first_name = firstName
      changed = true
    }
    if (changed) this.touch(subscriber, now)
    this.writeFields(account, subscriber, values, now)
  }

  /** Writes field values; those that change move updated_at and fire `field_value_updated`. */
  private writeFields(account: Account, subscriber: StandinSubscriber, values: Record<string, string>, now: number): void {
    const changed = Object.entries(values).filter(([key, value]) => subscriber.fields[key] !== value)
    if (changed.length === 0) return
    for (const [key, value] of changed) subscriber.fields[key] = value
    this.touch(subscriber, now)
    for (const [key] of changed) {
      const field = account.state.customFields.find((candidate) => candidate.key === key)
      if (field) this.fire(account, 'custom_field.field_value_updated', subscriber, field.id)
    }
  }

  private unsubscribeById({ account, params, now }: Context): Reply {
    this.transition(account, this.subscriberById(account, params[0]), 'cancelled', now)
    return { status: 204 }
  }

  // State changes and webhooks

  /** Moves updated_at forward (strictly, so two changes in one millisecond still read as two). */
  private touch(subscriber: StandinSubscriber, now: number): void {
    subscriber.updated_at = new Date(Math.max(now, Date.parse(subscriber.updated_at) + 1)).toISOString()
  }

  private transition(account: Account, subscriber: StandinSubscriber, state: SubscriberState, now: number): void {
    if (subscriber.state === state) return
    subscriber.state = state
    this.touch(subscriber, now)
    const event = STATE_EVENTS[state]
    if (event) this.fire(account, event, subscriber)
  }

  /** Delivers `{"subscriber": {...}}` as it is now to every webhook listening to this event. */
  private fire(account: Account, event: string, subscriber: StandinSubscriber, parameterValue?: number): void {
    const listening = account.state.webhooks.filter((webhook) => listensTo(webhook, event, parameterValue))
    if (listening.length === 0) return
    const body = { subscriber: this.subscriberJson(account, subscriber) }
    for (const webhook of listening) this.webhookSender.send(account.key, webhook, body)
  }

  private createWebhook({ account, body, now }: Context): Reply {
    const webhook: StandinWebhook = { id: this.nextId(), ...parseWebhook(body), created_at: kitTimestamp(now) }
    account.state.webhooks.push(webhook)
    return { status: 201, body: { webhook: webhookJson(account.state.id, webhook) } }
  }

  private deleteWebhook({ account, params }: Context): Reply {
    const index = account.state.webhooks.findIndex((webhook) => webhook.id === params[0])
    if (index < 0) throw notFound()
    account.state.webhooks.splice(index, 1)
    return { status: 204 }
  }

  // Tags

  private findOrCreateTag(account: Account, name: string): { tag: StandinTag; created: boolean } {
    const wanted = name.toLowerCase()
    const existing = account.state.tags.find((tag) => tag.name.toLowerCase() === wanted)
    if (existing) return { tag: existing, created: false }
    const tag = { id: this.nextId(), name, created_at: kitTimestamp(Date.now()) }
    account.state.tags.push(tag)
    return { tag, created: true }
  }

  private tagById(account: Account, id: number | undefined): StandinTag {
    const tag = account.state.tags.find((candidate) => candidate.id === id)
    if (!tag) throw notFound()
    return tag
  }

  private createTag({ account, body }: Context): Reply {
    const name = typeof body.name === 'string' ? body.name.trim() : ''
    if (name === '') throw new KitError(422, ["Name can't be blank"])
    const { tag, created } = this.findOrCreateTag(account, name)
    return { status: created ? 201 : 200, body: { tag: { id: tag.id, name: tag.name, created_at: tag.created_at } } }
  }

  private taggedJson(account: Account, tagId: number, subscriber: StandinSubscriber): JsonObject {
    const taggedAt = account.joinedAt.get(joinKey('tag', tagId, subscriber.id)) ?? subscriber.created_at
    return { ...this.subscriberJson(account, subscriber), tagged_at: taggedAt }
  }

  /** Unsettled: a missing subscriber gives 404 or 422. Modelled variant: 404. */
  private tag(ctx: Context, findSubscriber: () => StandinSubscriber): Reply {
    const tag = this.tagById(ctx.account, ctx.params[0])
    const subscriber = findSubscriber()
    const added = this.addTag(ctx.account, tag, subscriber, ctx.now)
    return { status: added ? 201 : 200, body: { subscriber: this.taggedJson(ctx.account, tag.id, subscriber) } }
  }

  /** Tags a person (false: they had the tag already), whichever endpoint asks. */
  private addTag(account: Account, tag: StandinTag, subscriber: StandinSubscriber, now: number): boolean {
    if (subscriber.tags.has(tag.id)) return false
    subscriber.tags.add(tag.id)
    account.joinedAt.set(joinKey('tag', tag.id, subscriber.id), kitTimestamp(now))
    this.fire(account, 'subscriber.tag_add', subscriber, tag.id)
    return true
  }

  private untag(ctx: Context, findSubscriber: () => StandinSubscriber): Reply {
    const tag = this.tagById(ctx.account, ctx.params[0])
    this.removeTag(ctx.account, tag, findSubscriber())
    return { status: 204 }
  }

  private removeTag(account: Account, tag: StandinTag, subscriber: StandinSubscriber): void {
    if (subscriber.tags.delete(tag.id)) this.fire(account, 'subscriber.tag_remove', subscriber, tag.id)
    account.joinedAt.delete(joinKey('tag', tag.id, subscriber.id))
  }

  private listTagSubscribers(ctx: Context): Reply {
    const tag = this.tagById(ctx.account, ctx.params[0])
    const matchesStatus = statusFilter(ctx.query)
    const tagged = ctx.account.state.subscribers.filter(
      (subscriber) => subscriber.tags.has(tag.id) && matchesStatus(subscriber) && this.listable(ctx.account, subscriber, ctx.now),
    )
    return this.listOf(ctx, 'subscribers', tagged, (subscriber) => this.taggedJson(ctx.account, tag.id, subscriber))
  }

  // Custom fields

  private fieldJson(field: StandinCustomField): JsonObject {
    return { id: field.id, name: field.name, key: field.key, label: field.label }
  }

  private uniqueFieldKey(account: Account, label: string, id: number): string {
    const base = deriveFieldKey(label) || `field_${id}`
    const taken = (key: string): boolean => account.state.customFields.some((field) => field.key === key && field.id !== id)
    let key = base
    for (let suffix = 2; taken(key); suffix++) key = `${base}_${suffix}`
    return key
  }

  private findOrCreateField(account: Account, label: string): { field: StandinCustomField; created: boolean } {
    const wanted = label.toLowerCase()
    const existing = account.state.customFields.find((field) => field.label.toLowerCase() === wanted)
    if (existing) return { field: existing, created: false }
    const id = this.nextId()
    const key = this.uniqueFieldKey(account, label, id)
    const field = { id, key, label, name: `ck_field_${id}_${key}` }
    account.state.customFields.push(field)
    return { field, created: true }
  }

  /** Labels are unique per account: Kit refuses one it already has rather than answering with it. */
  private createField({ account, body }: Context): Reply {
    const { field, created } = this.findOrCreateField(account, requireLabel(body))
    if (!created) throw new KitError(422, [LABEL_TAKEN])
    return { status: 201, body: { custom_field: this.fieldJson(field) } }
  }

  /** Renaming a label changes the key; stored values follow the field to its new key. */
  private renameField({ account, params, body }: Context): Reply {
    const field = account.state.customFields.find((candidate) => candidate.id === params[0])
    if (!field) throw notFound()
    const label = requireLabel(body)
    if (account.state.customFields.some((other) => other.id !== field.id && other.label.toLowerCase() === label.toLowerCase())) {
      throw new KitError(422, [LABEL_TAKEN])
    }
    const oldKey = field.key
    field.label = label
    field.key = this.uniqueFieldKey(account, label, field.id)
    field.name = `ck_field_${field.id}_${field.key}`
    if (field.key !== oldKey) {
      for (const subscriber of account.state.subscribers) {
        if (!(oldKey in subscriber.fields)) continue
        const value = subscriber.fields[oldKey]
        delete subscriber.fields[oldKey]
        if (value !== undefined) subscriber.fields[field.key] = value
      }
    }
    return { status: 200, body: { custom_field: this.fieldJson(field) } }
  }

  // Forms

  private createForm(account: Account, seed: Pick<StandinForm, 'name' | 'archived' | 'format' | 'type' | 'legacy'>): StandinForm {
    const form = {
      id: this.nextId(),
      ...seed,
      uid: randomBytes(5).toString('hex'),
      created_at: kitTimestamp(Date.now()),
      subscribers: [],
      referrers: {},
    }
    account.state.forms.push(form)
    return form
  }

  /** Kit's `type` filter (embed, hosted); without it both are listed. */
  private typeFilter(query: URLSearchParams): (form: StandinForm) => boolean {
    const type = query.get('type')
    if (type === null) return () => true
    if (type !== 'embed' && type !== 'hosted') throw new KitError(422, ['Type is invalid'])
    return (form) => form.type === type
  }

  /**
   * Kit's `status` filter (active, archived, all); without it only active forms are listed. Legacy
   * forms are not in this list (see listLegacyForms).
   */
  private listForms(ctx: Context): Reply {
    const status = ctx.query.get('status') ?? 'active'
    if (!['active', 'archived', 'all'].includes(status)) throw new KitError(422, ['Status is invalid'])
    const ofType = this.typeFilter(ctx.query)
    const forms = ctx.account.state.forms.filter(
      (form) => !form.legacy && ofType(form) && (status === 'all' || form.archived === (status === 'archived')),
    )
    return this.listOf(ctx, 'forms', forms, (form) => ({
      id: form.id,
      name: form.name,
      created_at: form.created_at,
      type: form.type,
      format: form.format,
      embed_js: `https://standin.kit.invalid/${form.uid}/index.js`,
      embed_url: `https://standin.kit.invalid/${form.uid}`,
      archived: form.archived,
      uid: form.uid,
    }))
  }

  /** Legacy forms (`type=embed`) and legacy landing pages (`type=hosted`): no `format`, no `uid`, no `archived`. */
  private listLegacyForms(ctx: Context): Reply {
    const ofType = this.typeFilter(ctx.query)
    const forms = ctx.account.state.forms.filter((form) => form.legacy && ofType(form))
    return this.listOf(ctx, 'legacy_landing_pages', forms, (form) => ({
      id: form.id,
      name: form.name,
      created_at: form.created_at,
      type: form.type,
      url: `https://standin.kit.invalid/landing_pages/${form.id}`,
    }))
  }

  /**
   * Unsettled error shape: an unknown form answers 404 with a plain string in `errors`. An archived
   * form, and a legacy one (joined through /v4/landing_pages), answer the same 404.
   */
  private addToForm(ctx: Context, findSubscriber: () => StandinSubscriber): Reply {
    const form = ctx.account.state.forms.find((candidate) => candidate.id === ctx.params[0])
    if (!form || form.archived || form.legacy) throw new KitError(404, 'Form not found')
    const subscriber = findSubscriber()
    const referrer = typeof ctx.body.referrer === 'string' ? ctx.body.referrer : null
    this.formAddition(ctx.account, form, subscriber, referrer, ctx.now)
    return this.join(ctx, 'form', form, subscriber, { referrer })
  }

  /** What adding a person to a form does before they join it, whichever endpoint asks (single or bulk). */
  private formAddition(account: Account, form: StandinForm, subscriber: StandinSubscriber, referrer: string | null, now: number): void {
    if (referrer !== null && !form.subscribers.includes(subscriber.id)) form.referrers[subscriber.id] = referrer
    this.askToConfirm(account, form, subscriber, now)
  }

  /**
   * Kit's re-subscribe path: a form sends an unconfirmed (`inactive`) or unsubscribed (`cancelled`)
   * person its confirmation email, and an unsubscribed one becomes unconfirmed again. Every add
   * sends one. Modelled variant for `bounced` and `complained`: Kit mails neither, nothing changes.
   */
  private askToConfirm(account: Account, form: StandinForm, subscriber: StandinSubscriber, now: number): void {
    if (subscriber.state !== 'inactive' && subscriber.state !== 'cancelled') return
    this.transition(account, subscriber, 'inactive', now)
    account.state.confirmationEmails.push({
      id: this.nextId(),
      subscriber_id: subscriber.id,
      email_address: subscriber.email_address,
      form_id: form.id,
      sent_at: kitTimestamp(now),
    })
  }

  /** A legacy form, by subscriber id only; any other form id is Not Found here. */
  private addToLegacyForm(ctx: Context): Reply {
    const form = ctx.account.state.forms.find((candidate) => candidate.id === ctx.params[0])
    if (!form?.legacy) throw notFound()
    const subscriber = this.subscriberById(ctx.account, ctx.params[1])
    this.askToConfirm(ctx.account, form, subscriber, ctx.now)
    return this.join(ctx, 'form', form, subscriber, {})
  }

  // Sequences

  private createSequence(account: Account, name: string, active: boolean): StandinSequence {
    const sequence = { id: this.nextId(), name, active, created_at: kitTimestamp(Date.now()), subscribers: [] }
    account.state.sequences.push(sequence)
    return sequence
  }

  /** Kit has no `active` flag in this list; an inactive sequence is shown as on hold. */
  private sequenceJson(sequence: StandinSequence): JsonObject {
    return { id: sequence.id, name: sequence.name, hold: !sequence.active, repeat: false, created_at: sequence.created_at }
  }

  /** Errors of this endpoint come as nested arrays: `{"errors":[["Sequence is inactive"]]}`. */
  private addToSequence(ctx: Context, findSubscriber: () => StandinSubscriber): Reply {
    try {
      const sequence = ctx.account.state.sequences.find((candidate) => candidate.id === ctx.params[0])
      if (!sequence) throw notFound()
      const subscriber = findSubscriber()
      if (!sequence.active) throw new KitError(422, ['Sequence is inactive'])
      return this.join(ctx, 'sequence', sequence, subscriber, {})
    } catch (error) {
      throw nested(error)
    }
  }

  private join(
    ctx: Context,
    kind: 'form' | 'sequence',
    group: { id: number; subscribers: number[] },
    subscriber: StandinSubscriber,
    extra: JsonObject,
  ): Reply {
    const joined = this.joinGroup(ctx.account, kind, group, subscriber, ctx.now)
    return {
      status: joined.already ? 200 : 201,
      body: { subscriber: { ...this.subscriberJson(ctx.account, subscriber), added_at: joined.addedAt, ...extra } },
    }
  }

  /** Joins a form or sequence once (firing its webhook); answers when they joined. */
  private joinGroup(
    account: Account,
    kind: 'form' | 'sequence',
    group: { id: number; subscribers: number[] },
    subscriber: StandinSubscriber,
    now: number,
  ): { already: boolean; addedAt: string } {
    const key = joinKey(kind, group.id, subscriber.id)
    const already = group.subscribers.includes(subscriber.id)
    if (!already) {
      group.subscribers.push(subscriber.id)
      account.joinedAt.set(key, kitTimestamp(now))
      const event = kind === 'form' ? 'subscriber.form_subscribe' : 'subscriber.course_subscribe'
      this.fire(account, event, subscriber, group.id)
    }
    return { already, addedAt: account.joinedAt.get(key) ?? subscriber.created_at }
  }

  // Bulk (bulk.ts): the same verbs as the single endpoints, lent for one account.

  private bulkReply(ctx: Context, endpoint: BulkEndpoint, path: string): Reply {
    return this.bulk.reply(this.bulkOperations(ctx.account), endpoint, path, ctx.body, ctx.bodyBytes, ctx.now)
  }

  private bulkOperations(account: Account): BulkOperations {
    return {
      key: account.key,
      state: account.state,
      bulk: account.bulk,
      subscriberById: (id) => account.state.subscribers.find((candidate) => candidate.id === id),
      subscriberByEmail: (email) => this.findByEmail(account, email),
      upsert: (input, now) => this.upsertByEmail(account, input, now).subscriber,
      tag: (tag, subscriber, now) => {
        this.addTag(account, tag, subscriber, now)
        return account.joinedAt.get(joinKey('tag', tag.id, subscriber.id)) ?? subscriber.created_at
      },
      untag: (tag, subscriber) => this.removeTag(account, tag, subscriber),
      writeField: (subscriber, field, value, now) => this.writeFields(account, subscriber, { [field.key]: value }, now),
      addToForm: (form, subscriber, referrer, now) => {
        this.formAddition(account, form, subscriber, referrer, now)
        return this.joinGroup(account, 'form', form, subscriber, now).addedAt
      },
    }
  }
}

export async function startKitStandin(options: StandinOptions = {}): Promise<KitStandin> {
  const standin = new StandinServer(options)
  await standin.listen(options.host ?? '127.0.0.1', options.port ?? 0)
  return standin
}
