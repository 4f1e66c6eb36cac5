// Over 400 lines: one real HTTP server and the real client behind every Kit call the plugin makes, each with its traps.
import { createServer as createHttpServer, type IncomingHttpHeaders, type RequestListener } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { RequestBudget } from '../server/kit/budget.ts'
import { KitClientFactory, credentialIdFor, type KitRequestInfo } from '../server/kit/client.ts'
import { KitError, KitFieldWarnings, isKitError } from '../server/kit/errors.ts'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'

const KEY = 'kit_test_key'

const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

async function standin(options?: Parameters<typeof startKitStandin>[0]): Promise<KitStandin> {
  const kit = await startKitStandin(options)
  cleanups.push(() => kit.close())
  return kit
}

interface Setup {
  factory: KitClientFactory
  budget: RequestBudget
  attempts: KitRequestInfo[]
}

const CREDENTIAL_KEY = Buffer.alloc(32, 7)

function client(baseUrl: string, overrides: { limit?: number; windowMs?: number; attempts?: number; timeoutMs?: number } = {}): Setup {
  const budget = new RequestBudget({ limit: overrides.limit ?? 120, windowMs: overrides.windowMs ?? 60_000 })
  const attempts: KitRequestInfo[] = []
  const factory = new KitClientFactory({
    baseUrl,
    budget,
    credentialKey: CREDENTIAL_KEY,
    timeoutMs: overrides.timeoutMs ?? 5000,
    retry: { attempts: overrides.attempts ?? 3, baseMs: 5, maxMs: 20 },
    onRequest: (info) => attempts.push(info),
  })
  return { factory, budget, attempts }
}

async function failure(promise: Promise<unknown>): Promise<KitError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  if (!isKitError(error)) throw new Error(`expected a KitError, got ${String(error)}`)
  return error
}

function expectNoKey(error: KitError, key: string = KEY): void {
  expect(error.message).not.toContain(key)
  for (const message of error.messages) expect(message).not.toContain(key)
  expect(JSON.stringify(error)).not.toContain(key)
}

describe('Kit client against the stand-in', () => {
  it('reads the account with the key in X-Kit-Api-Key and reports every attempt', async () => {
    const kit = await standin()
    const { factory, attempts } = client(kit.url)
    const calls: KitRequestInfo[] = []
    const api = factory.forKey(KEY, { onRequest: (info) => calls.push(info) })
    const info = await api.getAccount()
    expect(info.account.id).toEqual(expect.any(Number))
    expect(info.user.email).toEqual(expect.any(String))
    expect(api.credentialId).toBe(credentialIdFor(CREDENTIAL_KEY, KEY))
    expect(api.credentialId).not.toContain(KEY)
    expect(kit.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v4/account', key: KEY, status: 200 })
    expect(attempts).toEqual([
      { method: 'GET', path: '/v4/account', status: 200, durationMs: expect.any(Number), credentialId: api.credentialId },
    ])
    expect(calls).toEqual(attempts)
  })

  it('accepts an account answer without user.id', async () => {
    const kit = await standin()
    kit.addKey('kit_no_user_id', { email: 'owner@club.test', omitUserId: true })
    const info = await client(kit.url).factory.forKey('kit_no_user_id').getAccount()
    expect(info.user).toEqual({ email: 'owner@club.test', id: null })
    expect(info.account.id).toEqual(expect.any(Number))
  })

  it('turns a 401 into invalid_credentials without echoing the key', async () => {
    const kit = await standin()
    const { factory } = client(kit.url)
    const error = await failure(factory.forKey('kit_wrong_key').getAccount())
    expect(error.kind).toBe('invalid_credentials')
    expect(error.status).toBe(401)
    expect(error.messages.length).toBeGreaterThan(0)
    expectNoKey(error, 'kit_wrong_key')

    kit.revokeKey(KEY)
    const revoked = await failure(factory.forKey(KEY).listTags())
    expect(revoked.kind).toBe('invalid_credentials')
    expectNoKey(revoked)
  })

  it('refuses a key that cannot be sent as a header without calling Kit', async () => {
    const kit = await standin()
    const { factory } = client(kit.url)
    const error = await failure(factory.forKey('bad\nkey').getAccount())
    expect(error.kind).toBe('invalid_credentials')
    expect(error.message).not.toContain('bad\nkey')
    expect(kit.requests).toHaveLength(0)
  })

  it.each([
    [
      'a flat list',
      { errors: ['Email address is invalid', 'First name is too long'] },
      ['Email address is invalid', 'First name is too long'],
    ],
    ['nested lists', { errors: [['Name is blank'], ['Name is too long']] }, ['Name is blank', 'Name is too long']],
    ['a plain string', { errors: 'Something is wrong' }, ['Something is wrong']],
  ])('flattens a 422 with %s into validation messages', async (_shape, body, messages) => {
    const kit = await standin()
    const { factory } = client(kit.url)
    kit.injectNext(1, { status: 422, body: JSON.stringify(body) })
    const error = await failure(factory.forKey(KEY).createTag('x'))
    expect(error).toBeInstanceOf(KitError)
    expect(error.kind).toBe('validation')
    expect(error.status).toBe(422)
    expect(error.messages).toEqual(messages)
    expect(error.message).toBe(messages.join('; '))
  })

  it('maps a 404 to not_found and a missing subscriber to null', async () => {
    const kit = await standin()
    const { factory } = client(kit.url)
    const api = factory.forKey(KEY)
    expect(await api.getSubscriber(987654321)).toBeNull()
    const error = await failure(api.tagSubscriber(987654321, 987654321))
    expect(error.kind).toBe('not_found')
    expect(error.messages).toEqual(['Not Found'])
  })

  it('reads the error shapes of real routes: nested for custom fields, a string for forms', async () => {
    const kit = await standin({ listLagMs: 0 })
    const api = client(kit.url).factory.forKey(KEY)
    const blank = await failure(api.createCustomField('  '))
    expect(blank).toMatchObject({ kind: 'validation', status: 422, messages: ["Label can't be blank"] })
    const { subscriber } = await api.upsertSubscriber({ email: 'ada@example.com' })
    const missingForm = await failure(api.addSubscriberToForm(987654321, subscriber.id))
    expect(missingForm).toMatchObject({ kind: 'not_found', status: 404, messages: ['Form not found'] })
  })

  it('stops an interactive call at a plain-text 429 and blocks the credential for a window', async () => {
    const kit = await standin()
    const { factory, budget } = client(kit.url)
    kit.injectNext(1, { status: 429, body: 'Retry later', contentType: 'text/plain' })
    const api = factory.forKey(KEY, { priority: 'interactive' })
    const error = await failure(api.listTags())
    expect(error.kind).toBe('rate_limited')
    expect(error.status).toBe(429)
    expect(error.messages).toEqual(['Retry later'])
    expect(budget.usage(api.credentialId).blockedUntil).toBeGreaterThan(Date.now())
    expect(budget.delayFor(api.credentialId, 'interactive')).toBeGreaterThan(59_000)
  })

  it('lets a background call wait out a 429 and try once more', async () => {
    const kit = await standin()
    const { factory, attempts } = client(kit.url, { windowMs: 300 })
    kit.injectNext(1, { status: 429, body: 'Retry later', contentType: 'text/plain' })
    const started = Date.now()
    const tags = await factory.forKey(KEY, { priority: 'background' }).listTags()
    expect(tags).toEqual([])
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
    expect(attempts.map((a) => a.status)).toEqual([429, 200])
  })

  it('gives up on a second 429 even in the background', async () => {
    const kit = await standin()
    const { factory } = client(kit.url, { windowMs: 100 })
    kit.injectNext(2, { status: 429, body: 'Retry later', contentType: 'text/plain' })
    const error = await failure(factory.forKey(KEY, { priority: 'background' }).listTags())
    expect(error.kind).toBe('rate_limited')
  })

  it('retries an HTML 500 and then reports unavailable without the page', async () => {
    const kit = await standin()
    const { factory, attempts } = client(kit.url)
    const page = '<!DOCTYPE html><html><body><h1>We are sorry, something went wrong</h1></body></html>'
    kit.injectNext(3, { status: 500, body: page, contentType: 'text/html' })
    const error = await failure(factory.forKey(KEY).getAccount())
    expect(error.kind).toBe('unavailable')
    expect(error.status).toBe(500)
    expect(error.messages).toEqual(['Kit answered 500 without details'])
    expect(attempts.map((a) => a.status)).toEqual([500, 500, 500])
  })

  it('recovers when a 5xx is followed by a good answer', async () => {
    const kit = await standin()
    const { factory, attempts } = client(kit.url)
    kit.injectNext(2, { status: 502, body: '', contentType: 'text/html' })
    await factory.forKey(KEY).getAccount()
    expect(attempts.map((a) => a.status)).toEqual([502, 502, 200])
  })

  it('retries a dropped connection and then succeeds', async () => {
    const kit = await standin()
    const { factory, attempts } = client(kit.url)
    kit.injectNext(1, 'network')
    const { tag, created } = await factory.forKey(KEY).createTag('Dropped once')
    expect(created).toBe(true)
    expect(tag.name).toBe('Dropped once')
    expect(attempts.map((a) => a.status)).toEqual(['network_error', 201])
  })

  it('reports unavailable when the connection keeps dropping', async () => {
    const kit = await standin()
    const { factory } = client(kit.url, { attempts: 2 })
    kit.injectNext(2, 'network')
    const error = await failure(factory.forKey(KEY).getAccount())
    expect(error.kind).toBe('unavailable')
    expect(error.status).toBeNull()
    expectNoKey(error)
  })

  it('reports unavailable when nothing listens', async () => {
    const server = await hangingServer()
    const url = server.url
    await server.close()
    const { factory } = client(url, { attempts: 2 })
    const error = await failure(factory.forKey(KEY).getAccount())
    expect(error.kind).toBe('unavailable')
    expect(error.message).toMatch(/could not be reached/)
    expectNoKey(error)
  })

  it('times out an attempt that never answers', async () => {
    const server = await hangingServer()
    const { factory, attempts } = client(server.url, { attempts: 2, timeoutMs: 150 })
    const error = await failure(factory.forKey(KEY).getAccount())
    expect(error.kind).toBe('unavailable')
    expect(error.message).toBe('Kit did not answer within 150 ms')
    expect(attempts.map((a) => a.status)).toEqual(['network_error', 'network_error'])
  })

  it('stops waiting when the caller aborts', async () => {
    const server = await hangingServer()
    const { factory } = client(server.url, { timeoutMs: 5000 })
    const controller = new AbortController()
    const reason = new Error('request closed')
    const call = factory.forKey(KEY, { signal: controller.signal }).getAccount()
    setTimeout(() => controller.abort(reason), 50)
    await expect(call).rejects.toBe(reason)
  })

  it('never puts the key in a message, even when Kit echoes it', async () => {
    const kit = await standin()
    const { factory } = client(kit.url)
    kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: [`The key ${KEY} cannot do that`] }) })
    const error = await failure(factory.forKey(KEY).createTag('x'))
    expect(error.messages).toEqual(['The key [redacted] cannot do that'])
    expectNoKey(error)
  })

  it('follows every page of a list, encoding the cursors', async () => {
    const kit = await standin()
    const names = Array.from({ length: 2345 }, (_, i) => `Tag ${String(i).padStart(4, '0')}`)
    kit.seed(KEY, { tags: names })
    const { factory } = client(kit.url)
    const tags = await factory.forKey(KEY).listTags()
    expect(tags.map((t) => t.name).sort()).toEqual(names)
    expect(new Set(tags.map((t) => t.id)).size).toBe(names.length)
    const pages = kit.requests.filter((r) => r.path === '/v4/tags')
    expect(pages).toHaveLength(3)
    const queries = pages.map((r) => new URLSearchParams(r.query))
    expect(queries.map((q) => q.get('per_page'))).toEqual(['1000', '1000', '1000'])
    expect(queries[0]?.has('after')).toBe(false)
    expect(queries[1]?.get('after')).toMatch(/[+/=]/)
    expect(pages[1]?.query).toMatch(/after=[^&]*%2B/)
  })

  it('lists custom fields, forms and sequences', async () => {
    const kit = await standin()
    kit.seed(KEY, {
      customFields: ['Subscription plan'],
      forms: [{ name: 'Newsletter' }, { name: 'Old form', archived: true }],
      sequences: [{ name: 'Welcome' }],
    })
    const api = client(kit.url).factory.forKey(KEY)
    expect(await api.listCustomFields()).toEqual([
      { id: expect.any(Number), key: 'subscription_plan', label: 'Subscription plan', name: expect.any(String) },
    ])
    const forms = await api.listForms()
    expect(forms.find((f) => f.name === 'Newsletter')).toMatchObject({ archived: false })
    expect(await api.listSequences()).toEqual([{ id: expect.any(Number), name: 'Welcome', hold: false }])
  })

  it("lists forms as Kit's own libraries do: type=embed, active unless asked, without Creator Profile forms (a null format)", async () => {
    const kit = await standin()
    kit.seed(KEY, {
      forms: [
        { name: 'Newsletter' },
        { name: 'Old form', archived: true },
        { name: 'Landing page', format: null },
        { name: 'Old page', archived: true, format: null },
        { name: 'Creator Profile', format: null, type: 'embed' },
      ],
      sequences: [{ name: 'Paused', active: false }],
    })
    const api = client(kit.url).factory.forKey(KEY)
    expect((await api.listForms()).map((f) => f.name)).toEqual(['Newsletter'])
    expect((await api.listForms('archived')).map((f) => [f.name, f.archived])).toEqual([['Old form', true]])
    expect((await api.listForms('all')).map((f) => [f.name, f.archived])).toEqual([
      ['Newsletter', false],
      ['Old form', true],
    ])
    const queries = kit.requests.filter((r) => r.path === '/v4/forms').map((r) => new URLSearchParams(r.query))
    expect(queries.map((q) => [q.get('type'), q.get('status')])).toEqual([
      ['embed', 'active'],
      ['embed', 'archived'],
      ['embed', 'all'],
    ])
    expect(await api.listSequences()).toEqual([{ id: expect.any(Number), name: 'Paused', hold: true }])
  })

  it('lists legacy forms from /v4/landing_pages?type=embed, marked legacy (no format)', async () => {
    const kit = await standin()
    kit.seed(KEY, {
      forms: [{ name: 'Newsletter' }, { name: 'Old embed', legacy: true }, { name: 'Old landing page', legacy: true, type: 'hosted' }],
    })
    const api = client(kit.url).factory.forKey(KEY)
    expect(await api.listLegacyForms()).toEqual([
      { id: expect.any(Number), name: 'Old embed', type: 'embed', format: null, archived: false, legacy: true },
    ])
    expect((await api.listForms()).map((f) => [f.name, f.legacy])).toEqual([['Newsletter', false]])
    expect(kit.requests.find((r) => r.path === '/v4/landing_pages')?.query).toBe('type=embed&per_page=1000')
  })

  it('joins forms and sequences by subscriber id, a form with its referrer, a legacy form through /v4/landing_pages', async () => {
    const kit = await standin({ listLagMs: 0 })
    kit.seed(KEY, { forms: [{ name: 'Newsletter' }, { name: 'Old embed', legacy: true }], sequences: [{ name: 'Welcome' }] })
    const api = client(kit.url).factory.forKey(KEY)
    const [form] = await api.listForms()
    const [legacy] = await api.listLegacyForms()
    const [sequence] = await api.listSequences()
    if (!form || !legacy || !sequence) throw new Error('seed missing')
    const { subscriber } = await api.upsertSubscriber({ email: 'lee@example.com', state: 'inactive' })
    await api.addSubscriberToForm(form.id, subscriber.id, 'https://club.example/communities/c_1')
    await api.addSubscriberToLegacyForm(legacy.id, subscriber.id)
    await api.addSubscriberToSequence(sequence.id, subscriber.id)
    // Kit answers a legacy form's id on the forms route as Not Found.
    expect(await failure(api.addSubscriberToForm(legacy.id, subscriber.id))).toMatchObject({ kind: 'not_found', status: 404 })
    const account = kit.account(KEY)
    expect(account.forms.map((f) => [f.name, f.subscribers])).toEqual([
      ['Newsletter', [subscriber.id]],
      ['Old embed', [subscriber.id]],
    ])
    expect(account.sequences[0]!.subscribers).toEqual([subscriber.id])
    expect(kit.requests.map((r) => `${r.method} ${r.path.replace(/\/\d+/g, '/:id')} ${r.status}`).slice(-4)).toEqual([
      'POST /v4/forms/:id/subscribers/:id 201',
      'POST /v4/landing_pages/:id/subscribers/:id 201',
      'POST /v4/sequences/:id/subscribers/:id 201',
      'POST /v4/forms/:id/subscribers/:id 404',
    ])
  })

  it("tells from a 202 (more than ten fields) whether Kit created the subscriber, by its created_at against Kit's Date", async () => {
    const kit = await standin({ listLagMs: 0 })
    const labels = Array.from({ length: 11 }, (_, i) => `Extra ${i}`)
    kit.seed(KEY, { customFields: labels })
    const fields = Object.fromEntries(labels.map((_, i) => [`extra_${i}`, `v${i}`]))
    const api = client(kit.url).factory.forKey(KEY)
    const fresh = await api.upsertSubscriber({ email: 'many@example.com', fields })
    expect(fresh).toMatchObject({ created: true, fieldsDeferred: true })
    const old = kit.createSubscriber(KEY, { email: 'old@example.com' })
    old.created_at = '2026-01-01T00:00:00Z'
    expect(await api.upsertSubscriber({ email: 'old@example.com', fields })).toMatchObject({ created: false, fieldsDeferred: true })
    expect(await api.upsertSubscriber({ email: 'few@example.com', fields: { extra_0: 'a' } })).toMatchObject({
      created: true,
      fieldsDeferred: false,
    })
  })

  it('creates tags once and finds them the second time; a custom field label already taken is refused as Kit does', async () => {
    const kit = await standin()
    const api = client(kit.url).factory.forKey(KEY)
    const first = await api.createTag('Active Member')
    const second = await api.createTag('Active Member')
    expect(first.created).toBe(true)
    expect(second).toEqual({ tag: first.tag, created: false })
    const field = await api.createCustomField('Access level')
    expect(field).toEqual({ field: expect.objectContaining({ key: 'access_level', label: 'Access level' }), created: true })
    await expect(api.createCustomField('Access level')).rejects.toMatchObject({ kind: 'validation', status: 422 })
  })

  it('upserts a subscriber by a trimmed, lower-cased email', async () => {
    const kit = await standin({ listLagMs: 0 })
    kit.seed(KEY, { customFields: ['Subscription plan'] })
    const api = client(kit.url).factory.forKey(KEY)
    const created = await api.upsertSubscriber({
      email: '  Ada@Example.COM ',
      firstName: 'Ada',
      state: 'active',
      fields: { subscription_plan: 'pro' },
    })
    expect(created.created).toBe(true)
    expect(created.subscriber).toMatchObject({ email_address: 'ada@example.com', first_name: 'Ada', state: 'active' })
    const again = await api.upsertSubscriber({ email: 'ada@example.com', firstName: 'Ada L.' })
    expect(again.created).toBe(false)
    expect(again.subscriber.id).toBe(created.subscriber.id)
    expect(await api.getSubscriber(created.subscriber.id)).toMatchObject({ first_name: 'Ada L.' })
    expect(await api.findSubscriberByEmail(' ADA@example.com')).toMatchObject({ id: created.subscriber.id })
    expect(await api.findSubscriberByEmail('nobody@example.com')).toBeNull()
  })

  it('updates fields and treats warnings about unknown fields as a validation error', async () => {
    const kit = await standin({ listLagMs: 0 })
    kit.seed(KEY, { customFields: ['Subscription plan'] })
    const api = client(kit.url).factory.forKey(KEY)
    const { subscriber } = await api.upsertSubscriber({ email: 'grace@example.com' })
    const updated = await api.updateSubscriber(subscriber.id, { fields: { subscription_plan: 'team' } })
    expect(updated.fields.subscription_plan).toBe('team')
    const error = await failure(api.updateSubscriber(subscriber.id, { fields: { subscription_plan: 'solo', no_such_field: 'x' } }))
    expect(error.kind).toBe('validation')
    expect(error.messages).toEqual(["Custom field 'no_such_field' does not exist"])
    // The rest was written: the error carries the subscriber as Kit answered.
    expect(error).toBeInstanceOf(KitFieldWarnings)
    expect((error as KitFieldWarnings).subscriber).toMatchObject({ id: subscriber.id, fields: { subscription_plan: 'solo' } })
    const upsert = await failure(api.upsertSubscriber({ email: 'linus@example.com', fields: { no_such_field: 'x' } }))
    expect(upsert.kind).toBe('validation')
    expect((upsert as KitFieldWarnings).subscriber.email_address).toBe('linus@example.com')
    expect((upsert as KitFieldWarnings).answerStatus).toBe(201)
  })

  it('tags, untags, adds to forms and sequences, and unsubscribes', async () => {
    const kit = await standin({ listLagMs: 0 })
    kit.seed(KEY, { tags: ['Member'], forms: [{ name: 'Newsletter' }], sequences: [{ name: 'Welcome' }] })
    const api = client(kit.url).factory.forKey(KEY)
    const [tag] = await api.listTags()
    const [form] = await api.listForms()
    const [sequence] = await api.listSequences()
    if (!tag || !form || !sequence) throw new Error('seed missing')
    const { subscriber } = await api.upsertSubscriber({ email: 'ken@example.com' })
    await api.tagSubscriber(tag.id, subscriber.id)
    await api.tagSubscriber(tag.id, subscriber.id)
    await api.untagSubscriber(tag.id, subscriber.id)
    await api.addSubscriberToForm(form.id, subscriber.id)
    await api.addSubscriberToSequence(sequence.id, subscriber.id)
    await api.unsubscribe(subscriber.id)
    expect(await api.getSubscriber(subscriber.id)).toMatchObject({ state: 'cancelled' })
    const paths = kit.requests.map((r) => `${r.method} ${r.path} ${r.status}`)
    expect(paths).toEqual(
      expect.arrayContaining([
        `POST /v4/tags/${tag.id}/subscribers/${subscriber.id} 201`,
        `POST /v4/tags/${tag.id}/subscribers/${subscriber.id} 200`,
        `DELETE /v4/tags/${tag.id}/subscribers/${subscriber.id} 204`,
        `POST /v4/subscribers/${subscriber.id}/unsubscribe 204`,
      ]),
    )
  })

  it('refuses invalid ids and blank emails before calling Kit', async () => {
    const kit = await standin()
    const api = client(kit.url).factory.forKey(KEY)
    expect((await failure(api.tagSubscriber(1.5, 2))).kind).toBe('validation')
    expect((await failure(api.addSubscriberToForm(1, 0))).kind).toBe('validation')
    expect((await failure(api.upsertSubscriber({ email: '   ' }))).kind).toBe('validation')
    expect(kit.requests).toHaveLength(0)
  })

  it('stays inside the budget under a burst: 30 concurrent calls, no 429', async () => {
    const kit = await standin({ rateLimit: { limit: 10, windowMs: 1000 } })
    const { factory } = client(kit.url, { limit: 10, windowMs: 1000 })
    const interactive = factory.forKey(KEY, { priority: 'interactive', retryOn429: false })
    const background = factory.forKey(KEY, { priority: 'background', retryOn429: false })
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? interactive : background).getAccount()))
    expect(results).toHaveLength(30)
    expect(kit.requests.filter((r) => r.status === 429)).toHaveLength(0)
    expect(kit.requests).toHaveLength(30)
  }, 15_000)
})

describe('Kit client and redirects', () => {
  it.each([301, 302, 307, 308])('never follows a %i, so the key never reaches the other host', async (status) => {
    const other = await recordingServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify(ACCOUNT))
    })
    const redirector = await recordingServer((request, response) => {
      response.writeHead(status, { location: `${other.url}${request.url ?? '/'}` })
      response.end()
    })
    const { factory, attempts } = client(redirector.url)
    const error = await failure(factory.forKey(KEY).getAccount())
    expect(error.kind).toBe('unavailable')
    expect(error.status).toBe(status)
    expect(error.message).toMatch(/Kit answered with a redirect/)
    expectNoKey(error)
    expect(redirector.requests).toHaveLength(1)
    expect(redirector.requests[0]?.headers['x-kit-api-key']).toBe(KEY)
    expect(other.requests).toEqual([])
    expect(attempts.map((a) => a.status)).toEqual([status])
  })
})

describe('KitCallOptions defaults', () => {
  it('uses the interactive priority, and its reserved slot, when none is given', async () => {
    const kit = await standin()
    const { factory, budget } = client(kit.url, { limit: 2 })
    await factory.forKey(KEY, { priority: 'background' }).getAccount()
    const api = factory.forKey(KEY)
    expect(budget.delayFor(api.credentialId, 'background')).toBeGreaterThan(0)
    await api.getAccount()
    expect(budget.usage(api.credentialId).inWindow).toBe(2)
  })
})

async function hangingServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  cleanups.push(close)
  return { url: `http://127.0.0.1:${address.port}`, close }
}

const ACCOUNT = {
  user: { id: 1, email: 'owner@example.com' },
  account: { id: 2, name: 'Elsewhere', plan_type: null, primary_email_address: 'owner@example.com' },
}

interface Recorded {
  url: string
  headers: IncomingHttpHeaders
}

async function recordingServer(answer: RequestListener): Promise<{ url: string; requests: Recorded[] }> {
  const requests: Recorded[] = []
  const server = createHttpServer((request, response) => {
    requests.push({ url: request.url ?? '', headers: request.headers })
    answer(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  cleanups.push(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${address.port}`, requests }
}
