// Over 400 lines: one suite for the stand-in's five bulk endpoints and their admin settings, over HTTP.
/**
 * The stand-in's bulk endpoints, over HTTP with a token from its OAuth flow, as strict as Kit: OAuth
 * only, one request against the token's budget, per-item failures that null what Kit could not
 * resolve, more than 100 items queued (202, then the callback), 413 past the queue limit, 403 past
 * the plan's subscriber limit, and bulk items made to fail on purpose.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startKitStandin, type KitStandin, type StandinOAuthOptions } from './kit-standin/server.ts'

const KEY = 'key_a'
const REDIRECT = 'https://plugin.example/oauth/kit/callback'
const CLIENT = { clientId: 'client_1', clientSecret: 'secret_1' }

interface Answer {
  status: number
  // Parsed JSON answer; shapes vary per endpoint and are asserted field by field.
  body: any
  text: string
}

let standin: KitStandin
let token: string

async function start(oauth: Partial<StandinOAuthOptions> = {}): Promise<void> {
  standin = await startKitStandin({ apiKeys: [KEY], listLagMs: 0, oauth: { ...CLIENT, redirectUris: [REDIRECT], ...oauth } })
  token = await grant()
}

/** Connect with Kit through the stand-in's own consent page and token endpoint. */
async function grant(): Promise<string> {
  const verifier = randomBytes(32).toString('base64url')
  const authorize = new URL(`${standin.url}/v4/oauth/authorize`)
  authorize.search = new URLSearchParams({
    client_id: CLIENT.clientId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    state: 'st_1',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString()
  const location = (await fetch(authorize, { redirect: 'manual' })).headers.get('location') as string
  const res = await fetch(`${standin.url}/v4/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      client_id: CLIENT.clientId,
      client_secret: CLIENT.clientSecret,
      grant_type: 'authorization_code',
      code: new URL(location).searchParams.get('code') as string,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    }).toString(),
  })
  return ((await res.json()) as { access_token: string }).access_token
}

async function call(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const res = await fetch(url, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  const isJson = res.headers.get('content-type')?.startsWith('application/json') ?? false
  return { status: res.status, body: isJson && text !== '' ? JSON.parse(text) : undefined, text }
}

const bulk = (path: string, body: unknown, method = 'POST'): Promise<Answer> =>
  call(`${standin.url}/v4/bulk${path}`, method, { authorization: `Bearer ${token}` }, body)
const withKey = (path: string, method = 'GET', body?: unknown): Promise<Answer> =>
  call(`${standin.url}/v4${path}`, method, { 'x-kit-api-key': KEY }, body)
const admin = (path: string, method = 'GET', body?: unknown): Promise<Answer> =>
  call(`${standin.url}/_admin${path}`, method, { 'x-kit-api-key': KEY }, body)

const person = (email: string, state: 'active' | 'cancelled' | 'inactive' = 'active') => standin.createSubscriber(KEY, { email, state })
const seeded = () => {
  standin.seed(KEY, { tags: ['Member'], customFields: ['Company'], forms: [{ name: 'Join' }, { name: 'Old', archived: true }] })
  const { tags, customFields, forms } = standin.account(KEY)
  return { tag: tags[0]!, field: customFields[0]!, form: forms[0]!, archived: forms[1]! }
}
const emails = (count: number, prefix = 'p') => Array.from({ length: count }, (_, i) => ({ email_address: `${prefix}${i}@example.com` }))

/** A callback target on loopback that records what it receives. */
async function startReceiver(): Promise<{ url: string; received: any[]; close: () => Promise<void> }> {
  const received: any[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      res.writeHead(204)
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/kit/bulk-done`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

beforeEach(() => start())
afterEach(() => standin.close())

describe('authentication and budget', () => {
  it('refuses an API key on every bulk endpoint with Kit’s error shape, saying OAuth is needed', async () => {
    const routes: [string, string][] = [
      ['POST', '/bulk/subscribers'],
      ['POST', '/bulk/tags/subscribers'],
      ['DELETE', '/bulk/tags/subscribers'],
      ['POST', '/bulk/custom_fields/subscribers'],
      ['POST', '/bulk/forms/subscribers'],
    ]
    for (const [method, path] of routes) {
      const answer = await withKey(path, method, { subscribers: emails(1) })
      expect(answer.status).toBe(401)
      expect(answer.body).toEqual({ errors: [expect.stringMatching(/OAuth/)] })
    }
    expect(standin.account(KEY).subscribers).toEqual([])
  })

  it('counts each bulk request once against the token’s budget and logs it like any request', async () => {
    await standin.close()
    await start({ rateLimit: { limit: 2, windowMs: 60_000 } })
    expect((await bulk('/subscribers', { subscribers: emails(50) })).status).toBe(200)
    expect((await bulk('/subscribers', { subscribers: emails(50, 'q') })).status).toBe(200)
    const third = await bulk('/subscribers', { subscribers: emails(1, 'r') })
    expect(third).toMatchObject({ status: 429, text: 'Retry later' })
    const logged = standin.requests.filter((request) => request.path === '/v4/bulk/subscribers')
    expect(logged.map((request) => request.status)).toEqual([200, 200, 429])
    expect(new Set(logged.map((request) => request.grant))).toEqual(new Set([standin.oauth!.grants[0]!.id]))
  })
})

describe('POST /v4/bulk/subscribers', () => {
  it('creates new people, answers existing ones as they are in Kit, and lists invalid emails in failures', async () => {
    const cancelled = standin.createSubscriber(KEY, { email: 'gone@example.com', firstName: 'Old', state: 'cancelled' })
    const named = standin.createSubscriber(KEY, { email: 'named@example.com', firstName: 'Kept' })
    const answer = await bulk('/subscribers', {
      subscribers: [
        { email_address: 'new@example.com', first_name: 'Ada' },
        { email_address: 'unconfirmed@example.com', state: 'inactive' },
        { email_address: 'GONE@example.com', first_name: 'Renamed', state: 'active' },
        { email_address: 'named@example.com', first_name: null },
        { email_address: 'not-an-email', first_name: 'Benito' },
      ],
    })
    expect(answer.status).toBe(200)
    expect(Object.keys(answer.body).sort()).toEqual(['failures', 'subscribers'])
    const byEmail = Object.fromEntries((answer.body.subscribers as any[]).map((s) => [s.email_address, s]))
    expect(Object.keys(byEmail).sort()).toEqual(['gone@example.com', 'named@example.com', 'new@example.com', 'unconfirmed@example.com'])
    expect(byEmail['new@example.com']).toEqual({
      id: expect.any(Number),
      first_name: 'Ada',
      email_address: 'new@example.com',
      state: 'active',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    })
    expect(byEmail['unconfirmed@example.com']).toMatchObject({ state: 'inactive' })
    // Existing: the same person, a sent first name replaces theirs, the state never changes.
    expect(byEmail['gone@example.com']).toMatchObject({ id: cancelled.id, first_name: 'Renamed', state: 'cancelled' })
    expect(byEmail['named@example.com']).toMatchObject({ id: named.id, first_name: 'Kept' })
    // As Kit's own example shows it: the invalid email comes back as null.
    expect(answer.body.failures).toEqual([
      {
        subscriber: { first_name: 'Benito', email_address: null, state: 'active', created_at: null },
        errors: ['Email address is invalid'],
      },
    ])
    expect(standin.account(KEY).subscribers).toHaveLength(4)
  })

  it('does not answer in the request’s order', async () => {
    const answer = await bulk('/subscribers', { subscribers: emails(3) })
    const sent = emails(3).map((item) => item.email_address)
    const answered = (answer.body.subscribers as any[]).map((s) => s.email_address)
    expect([...answered].sort()).toEqual([...sent].sort())
    expect(answered).not.toEqual(sent)
  })

  it('refuses custom fields in this endpoint, creating nobody', async () => {
    seeded()
    const answer = await bulk('/subscribers', {
      subscribers: [{ email_address: 'a@example.com' }, { email_address: 'b@example.com', fields: { company: 'Acme' } }],
    })
    expect(answer.status).toBe(422)
    expect(answer.body).toEqual({ errors: [expect.stringMatching(/custom_fields\/subscribers/)] })
    expect(standin.account(KEY).subscribers).toEqual([])
  })

  it('answers 422 when the list is missing, not an array or empty, on every endpoint', async () => {
    const lists: [string, string, string][] = [
      ['POST', '/subscribers', 'subscribers'],
      ['POST', '/tags/subscribers', 'taggings'],
      ['DELETE', '/tags/subscribers', 'taggings'],
      ['POST', '/custom_fields/subscribers', 'custom_field_values'],
      ['POST', '/forms/subscribers', 'additions'],
    ]
    for (const [method, path, list] of lists) {
      const words = list.replaceAll('_', ' ')
      for (const body of [{}, { [list]: { email_address: 'a@example.com' } }, { [list]: [] }]) {
        expect(await bulk(path, body, method)).toMatchObject({ status: 422, body: { errors: [`No ${words} included for processing`] } })
      }
    }
  })
})

describe('POST and DELETE /v4/bulk/tags/subscribers', () => {
  it('tags existing people with tagged_at, and nulls what does not exist in failures', async () => {
    const { tag } = seeded()
    const ada = person('ada@example.com')
    const answer = await bulk('/tags/subscribers', {
      taggings: [
        { tag_id: tag.id, subscriber_id: ada.id },
        { tag_id: tag.id, subscriber_id: 999_999 },
        { tag_id: 888_888, subscriber_id: ada.id },
      ],
    })
    expect(answer.status).toBe(200)
    expect(answer.body.subscribers).toEqual([
      { id: ada.id, first_name: null, email_address: 'ada@example.com', created_at: ada.created_at, tagged_at: expect.any(String) },
    ])
    expect(answer.body.failures).toHaveLength(2)
    expect(answer.body.failures).toContainEqual({ tagging: { tag_id: tag.id, subscriber_id: null }, errors: ['Subscriber does not exist'] })
    expect(answer.body.failures).toContainEqual({ tagging: { tag_id: null, subscriber_id: ada.id }, errors: ['Tag does not exist'] })
    expect([...ada.tags]).toEqual([tag.id])

    const removed = await bulk(
      '/tags/subscribers',
      {
        taggings: [
          { tag_id: tag.id, subscriber_id: ada.id },
          { tag_id: 888_888, subscriber_id: ada.id },
        ],
      },
      'DELETE',
    )
    expect(removed).toMatchObject({ status: 200, body: { failures: [{ tagging: { tag_id: null, subscriber_id: ada.id } }] } })
    expect(Object.keys(removed.body)).toEqual(['failures'])
    expect(ada.tags.size).toBe(0)
  })
})

describe('POST /v4/bulk/custom_fields/subscribers', () => {
  it('writes string values by the field’s numeric id, never its key', async () => {
    const { field } = seeded()
    const ada = person('ada@example.com')
    const answer = await bulk('/custom_fields/subscribers', {
      custom_field_values: [
        { subscriber_id: ada.id, subscriber_custom_field_id: field.id, value: 'Acme' },
        { subscriber_id: ada.id, subscriber_custom_field_id: field.key, value: 'By key' },
        { subscriber_id: 999_999, subscriber_custom_field_id: field.id, value: 'Nobody' },
      ],
    })
    expect(answer.status).toBe(200)
    expect(answer.body.custom_field_values).toEqual([{ subscriber_id: ada.id, subscriber_custom_field_id: field.id, value: 'Acme' }])
    expect(answer.body.failures).toHaveLength(2)
    expect(answer.body.failures).toContainEqual({
      custom_field_value: { subscriber_id: ada.id, subscriber_custom_field_id: field.key, value: 'By key' },
      errors: ['Custom field does not exist'],
    })
    expect(answer.body.failures).toContainEqual({
      custom_field_value: { subscriber_id: null, subscriber_custom_field_id: field.id, value: 'Nobody' },
      errors: ['Subscriber does not exist'],
    })
    expect((await withKey(`/subscribers/${ada.id}`)).body.subscriber.fields).toEqual({ [field.key]: 'Acme' })
  })

  it('refuses a value that is not a string, writing nothing', async () => {
    const { field } = seeded()
    const ada = person('ada@example.com')
    const answer = await bulk('/custom_fields/subscribers', {
      custom_field_values: [
        { subscriber_id: ada.id, subscriber_custom_field_id: field.id, value: 'Acme' },
        { subscriber_id: ada.id, subscriber_custom_field_id: field.id, value: 42 },
      ],
    })
    expect(answer.status).toBe(422)
    expect(ada.fields).toEqual({})
  })
})

describe('POST /v4/bulk/forms/subscribers', () => {
  it('adds people to active forms; an archived or unknown form and an unknown person are failures', async () => {
    const { form, archived } = seeded()
    const ada = person('ada@example.com')
    const referrer = 'https://site.example/join?utm_source=news&utm_medium=email'
    const answer = await bulk('/forms/subscribers', {
      additions: [
        { form_id: form.id, subscriber_id: ada.id, referrer },
        { form_id: archived.id, subscriber_id: ada.id },
        { form_id: form.id, subscriber_id: 999_999 },
      ],
    })
    expect(answer.status).toBe(200)
    expect(answer.body.subscribers).toEqual([
      {
        id: ada.id,
        first_name: null,
        email_address: 'ada@example.com',
        created_at: ada.created_at,
        added_at: expect.any(String),
        referrer,
        referrer_utm_parameters: { source: 'news', medium: 'email', campaign: '', term: '', content: '' },
      },
    ])
    expect(answer.body.failures).toHaveLength(2)
    expect(answer.body.failures).toContainEqual({
      subscription: { form_id: null, subscriber_id: ada.id, referrer: null },
      errors: ['Form does not exist'],
    })
    expect(answer.body.failures).toContainEqual({
      subscription: { form_id: form.id, subscriber_id: null, referrer: null },
      errors: ['Subscriber does not exist'],
    })
    expect(standin.account(KEY).forms[0]!.subscribers).toEqual([ada.id])
  })

  it('takes an unsubscribed person down the re-subscribe path, as the single form endpoint does', async () => {
    const { form } = seeded()
    const gone = person('gone@example.com', 'cancelled')
    const answer = await bulk('/forms/subscribers', { additions: [{ form_id: form.id, subscriber_id: gone.id }] })
    expect(answer).toMatchObject({ status: 200, body: { failures: [] } })
    expect((await admin(`/subscribers/${gone.id}`)).body.subscriber.state).toBe('inactive')
    const sent = (await admin('/confirmation_emails')).body.confirmation_emails
    expect(sent).toEqual([expect.objectContaining({ subscriber_id: gone.id, email_address: 'gone@example.com', form_id: form.id })])
  })
})

describe('more than 100 items', () => {
  it('answers 202 {}, applies the work afterwards and POSTs the 200 body to callback_url', async () => {
    const receiver = await startReceiver()
    try {
      const sent = [...emails(101), { email_address: 'broken' }]
      const answer = await bulk('/subscribers', { subscribers: sent, callback_url: receiver.url })
      expect(answer).toMatchObject({ status: 202, body: {} })
      expect(standin.account(KEY).subscribers).toHaveLength(0)
      expect((await admin('/settings')).body.settings.queuedBytes).toBeGreaterThan(0)

      await standin.settleBulk()
      expect(standin.account(KEY).subscribers).toHaveLength(101)
      expect(receiver.received).toHaveLength(1)
      const [done] = receiver.received
      expect(done.subscribers).toHaveLength(101)
      expect(done.failures).toEqual([
        { subscriber: expect.objectContaining({ email_address: null }), errors: ['Email address is invalid'] },
      ])
      const callbacks = (await admin('/bulk_callbacks')).body.bulk_callbacks
      expect(callbacks).toEqual([expect.objectContaining({ path: '/v4/bulk/subscribers', callback_url: receiver.url, status: 204 })])
      expect((await admin('/settings')).body.settings.queuedBytes).toBe(0)
    } finally {
      await receiver.close()
    }
  })

  it('applies queued work without a callback when none was given, and calls none for 100 or fewer', async () => {
    const { tag } = seeded()
    const people = Array.from({ length: 101 }, (_, i) => person(`t${i}@example.com`))
    const taggings = people.map((p) => ({ tag_id: tag.id, subscriber_id: p.id }))
    expect(await bulk('/tags/subscribers', { taggings })).toMatchObject({ status: 202, body: {} })
    const receiver = await startReceiver()
    try {
      const small = await bulk('/tags/subscribers', { taggings: taggings.slice(0, 100), callback_url: receiver.url }, 'DELETE')
      expect(small).toMatchObject({ status: 200, body: { failures: [] } })
      await standin.settleBulk()
      expect(people.every((p) => p.tags.has(tag.id))).toBe(true)
      expect(standin.bulkCallbacks).toEqual([])
      expect(receiver.received).toEqual([])
    } finally {
      await receiver.close()
    }
  })
})

describe('the bulk queue limit (413)', () => {
  it('refuses a request that would pass the queued-bytes limit set through the admin API', async () => {
    expect((await admin('/settings')).body.settings).toEqual({
      bulkQueueLimitBytes: 300 * 1024 * 1024,
      subscriberLimit: null,
      bulkAsyncDelayMs: 100,
      failInBulk: [],
      queuedBytes: 0,
    })
    await admin('/settings', 'PUT', { bulkQueueLimitBytes: 200 })
    const answer = await bulk('/subscribers', { subscribers: emails(20) })
    expect(answer).toMatchObject({ status: 413, body: { errors: [expect.stringMatching(/queued bulk requests limit/)] } })
    expect(standin.account(KEY).subscribers).toEqual([])
  })

  it('counts queued requests until they are applied', async () => {
    const big = { subscribers: emails(101) }
    const size = Buffer.byteLength(JSON.stringify(big))
    await admin('/settings', 'PUT', { bulkQueueLimitBytes: size + 100, bulkAsyncDelayMs: 300 })
    expect((await bulk('/subscribers', big)).status).toBe(202)
    expect((await bulk('/subscribers', { subscribers: emails(5, 'more') })).status).toBe(413)
    await standin.settleBulk()
    expect((await bulk('/subscribers', { subscribers: emails(5, 'more') })).status).toBe(200)
  })
})

describe('the plan’s subscriber limit (403)', () => {
  it('refuses a bulk create that would pass it and creates nobody; existing people do not count as new', async () => {
    person('one@example.com')
    await admin('/settings', 'PUT', { subscriberLimit: 3 })
    const over = await bulk('/subscribers', { subscribers: [...emails(3), { email_address: 'one@example.com' }] })
    expect(over).toMatchObject({ status: 403, body: { errors: ['This request would exceed your subscriber limit'] } })
    expect(standin.account(KEY).subscribers).toHaveLength(1)
    const within = await bulk('/subscribers', {
      subscribers: [...emails(2), { email_address: 'one@example.com' }, { email_address: 'bad' }],
    })
    expect(within.status).toBe(200)
    expect(standin.account(KEY).subscribers).toHaveLength(3)
  })

  it('holds the single create to it too, while an upsert of someone existing still works', async () => {
    person('one@example.com')
    await admin('/settings', 'PUT', { subscriberLimit: 1 })
    const created = await withKey('/subscribers', 'POST', { email_address: 'two@example.com' })
    expect(created).toMatchObject({ status: 403, body: { errors: ['This request would exceed your subscriber limit'] } })
    expect((await withKey('/subscribers', 'POST', { email_address: 'one@example.com', first_name: 'One' })).status).toBe(200)
  })
})

describe('bulk items made to fail through the admin API', () => {
  it('fails the chosen email or subscriber id with the chosen error and applies the rest', async () => {
    const { tag } = seeded()
    const ada = person('ada@example.com')
    const bob = person('bob@example.com')
    const settings = await admin('/settings', 'PUT', {
      failInBulk: [
        { email: 'Blocked@example.com', error: 'Email address is on a suppression list' },
        { subscriberId: bob.id, error: 'Subscriber is locked' },
      ],
    })
    expect(settings.body.settings.failInBulk).toHaveLength(2)

    const created = await bulk('/subscribers', {
      subscribers: [{ email_address: 'blocked@example.com' }, { email_address: 'ok@example.com' }],
    })
    expect(created.body.subscribers).toEqual([expect.objectContaining({ email_address: 'ok@example.com' })])
    expect(created.body.failures).toEqual([
      {
        subscriber: { first_name: null, email_address: 'blocked@example.com', state: 'active', created_at: null },
        errors: ['Email address is on a suppression list'],
      },
    ])

    const tagged = await bulk('/tags/subscribers', {
      taggings: [
        { tag_id: tag.id, subscriber_id: ada.id },
        { tag_id: tag.id, subscriber_id: bob.id },
      ],
    })
    expect(tagged.body.subscribers.map((s: { id: number }) => s.id)).toEqual([ada.id])
    expect(tagged.body.failures).toEqual([{ tagging: { tag_id: tag.id, subscriber_id: bob.id }, errors: ['Subscriber is locked'] }])
    expect(bob.tags.size).toBe(0)

    await admin('/settings', 'PUT', { failInBulk: [] })
    expect((await bulk('/tags/subscribers', { taggings: [{ tag_id: tag.id, subscriber_id: bob.id }] })).body.failures).toEqual([])
  })

  it('refuses an unknown setting or a malformed failure rule', async () => {
    expect((await admin('/settings', 'PUT', { subscriberLimt: 5 })).status).toBe(422)
    expect((await admin('/settings', 'PUT', { failInBulk: [{ error: 'No one named' }] })).status).toBe(422)
    expect((await admin('/settings', 'PUT', { bulkQueueLimitBytes: -1 })).status).toBe(422)
    expect((await admin('/settings')).body.settings.subscriberLimit).toBeNull()
  })
})
