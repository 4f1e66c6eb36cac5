// Over 400 lines: the stand-in's every v4 route, checked against Kit's documented answers, over HTTP.
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { startKitStandin, type KitStandin, type StandinOptions } from './kit-standin/server.ts'
import { waitFor } from './helpers/events.ts'

interface KitAnswer {
  status: number
  headers: Headers
  text: string
  // Parsed JSON answer; shapes vary per endpoint and are asserted field by field.
  body: any
}

interface CallOptions {
  method?: string
  key?: string | null
  body?: unknown
  rawBody?: string
  headers?: Record<string, string>
}

let standin: KitStandin

async function start(options: StandinOptions = {}): Promise<void> {
  standin = await startKitStandin({ apiKeys: ['key_a', 'key_b'], ...options })
}

async function kit(path: string, options: CallOptions = {}): Promise<KitAnswer> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
  const key = options.key === undefined ? 'key_a' : options.key
  if (key !== null) headers['x-kit-api-key'] = key
  let body: string | undefined = options.rawBody
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.body)
  }
  const response = await fetch(`${standin.url}/v4${path}`, { method: options.method ?? 'GET', headers, body })
  const text = await response.text()
  const isJson = response.headers.get('content-type')?.startsWith('application/json') ?? false
  return { status: response.status, headers: response.headers, text, body: isJson ? JSON.parse(text) : undefined }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

afterEach(async () => {
  await standin.close()
})

describe('authentication', () => {
  beforeEach(() => start())

  it('refuses a request without a key, with an unknown key and with a revoked key', async () => {
    expect(await kit('/account', { key: null })).toMatchObject({ status: 401, body: { errors: ['The API key is invalid'] } })
    expect(await kit('/account', { key: 'kit_nope' })).toMatchObject({ status: 401, body: { errors: ['The API key is invalid'] } })

    standin.revokeKey('key_a')
    expect((await kit('/account')).status).toBe(401)
    standin.restoreKey('key_a')
    expect((await kit('/account')).status).toBe(200)
  })

  it('can leave user.id out of the account answer, as Kit may', async () => {
    standin.addKey('key_c', { email: 'owner@climb.test', omitUserId: true })
    const { status, body } = await kit('/account', { key: 'key_c' })
    expect(status).toBe(200)
    expect(body.user).toEqual({ email: 'owner@climb.test' })
  })

  it('answers a wrong bearer token with the access-token wording', async () => {
    const answer = await kit('/account', { key: null, headers: { authorization: 'Bearer wrong' } })
    expect(answer).toMatchObject({ status: 401, body: { errors: ['The access token is invalid'] } })
  })

  it('describes the account of the key', async () => {
    standin.addKey('key_c', { name: 'Climbing Club', email: 'owner@climb.test', planType: 'creator_pro' })
    const { status, body } = await kit('/account', { key: 'key_c' })
    expect(status).toBe(200)
    expect(body.user).toEqual({ email: 'owner@climb.test', id: expect.any(Number) })
    expect(body.account).toMatchObject({
      name: 'Climbing Club',
      plan_type: 'creator_pro',
      primary_email_address: 'owner@climb.test',
      timezone: { name: 'America/New_York', friendly_name: 'Eastern Time (US & Canada)', utc_offset: '-05:00' },
    })
  })
})

describe('subscribers', () => {
  beforeEach(async () => {
    await start({ listLagMs: 150 })
    standin.seed('key_a', { customFields: ['Subscription plan'] })
  })

  it('creates with 201, then answers 200 for the same email without writing fields or state', async () => {
    const created = await kit('/subscribers', {
      method: 'POST',
      body: { email_address: 'ada@example.com', first_name: 'Ada', state: 'inactive', fields: { subscription_plan: 'Gold' } },
    })
    expect(created.status).toBe(201)
    expect(created.body.subscriber).toMatchObject({
      email_address: 'ada@example.com',
      first_name: 'Ada',
      state: 'inactive',
      fields: { subscription_plan: 'Gold' },
    })
    expect(created.body.warnings).toBeUndefined()

    const again = await kit('/subscribers', {
      method: 'POST',
      body: { email_address: 'ADA@example.com', first_name: 'Ada L.', state: 'active', fields: { subscription_plan: 'Silver' } },
    })
    expect(again.status).toBe(200)
    expect(again.body.subscriber).toMatchObject({
      id: created.body.subscriber.id,
      first_name: 'Ada L.',
      state: 'inactive',
      fields: { subscription_plan: 'Gold' },
    })
  })

  it('drops unknown field keys and reports them as warnings on a 2xx', async () => {
    const answer = await kit('/subscribers', {
      method: 'POST',
      body: { email_address: 'bo@example.com', fields: { 'Subscription plan': 'Gold', subscription_plan: 'Gold' } },
    })
    expect(answer.status).toBe(201)
    expect(answer.body.warnings).toEqual(["Custom field 'Subscription plan' does not exist"])
    expect(standin.account('key_a').subscribers[0]?.fields).toEqual({ subscription_plan: 'Gold' })
  })

  it('answers 202 when more than ten fields are sent', async () => {
    const fields = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`extra_${i}`, 'x']))
    const answer = await kit('/subscribers', { method: 'POST', body: { email_address: 'many@example.com', fields } })
    expect(answer.status).toBe(202)
    expect(answer.body.warnings).toHaveLength(11)
  })

  it('applies the fields of a 202 a little later, not in the answer', async () => {
    const labels = Array.from({ length: 11 }, (_, i) => `Extra ${i}`)
    standin.seed('key_a', { customFields: labels })
    const fields = Object.fromEntries(labels.map((_, i) => [`extra_${i}`, `v${i}`]))
    const answer = await kit('/subscribers', { method: 'POST', body: { email_address: 'lots@example.com', fields } })
    expect(answer.status).toBe(202)
    expect(answer.body.subscriber.fields.extra_0).toBeNull()
    const id = answer.body.subscriber.id as number
    expect((await kit(`/subscribers/${id}`)).body.subscriber.fields.extra_0).toBeNull()
    await sleep(200)
    expect((await kit(`/subscribers/${id}`)).body.subscriber.fields).toMatchObject({ extra_0: 'v0', extra_10: 'v10' })
  })

  it('refuses null (and any other non-string) as a custom field value, and clears a field with ""', async () => {
    const created = await kit('/subscribers', {
      method: 'POST',
      body: { email_address: 'nul@example.com', fields: { subscription_plan: null } },
    })
    expect(created).toEqual(
      expect.objectContaining({ status: 422, body: { errors: ["Custom field 'subscription_plan' must be a string"] } }),
    )
    expect(standin.account('key_a').subscribers).toHaveLength(0)

    const { body } = await kit('/subscribers', {
      method: 'POST',
      body: { email_address: 'nul@example.com', fields: { subscription_plan: 'Gold' } },
    })
    const id = body.subscriber.id as number
    expect((await kit(`/subscribers/${id}`, { method: 'PUT', body: { fields: { subscription_plan: null } } })).status).toBe(422)
    expect((await kit(`/subscribers/${id}`, { method: 'PUT', body: { fields: { subscription_plan: 3 } } })).status).toBe(422)
    expect(standin.account('key_a').subscribers[0]?.fields).toEqual({ subscription_plan: 'Gold' })
    const cleared = await kit(`/subscribers/${id}`, { method: 'PUT', body: { fields: { subscription_plan: '' } } })
    expect(cleared.body.subscriber.fields).toEqual({ subscription_plan: '' })
  })

  it('refuses an invalid email with 422', async () => {
    const answer = await kit('/subscribers', { method: 'POST', body: { email_address: 'not-an-email' } })
    expect(answer).toMatchObject({ status: 422, body: { errors: ['Email address is invalid'] } })
  })

  it('writes fields of an existing subscriber through PUT', async () => {
    const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'cy@example.com' } })
    const id = body.subscriber.id as number
    const updated = await kit(`/subscribers/${id}`, { method: 'PUT', body: { fields: { subscription_plan: 'Gold', tier: 'x' } } })
    expect(updated.status).toBe(200)
    expect(updated.body.subscriber.fields).toEqual({ subscription_plan: 'Gold' })
    expect(updated.body.warnings).toEqual(["Custom field 'tier' does not exist"])
    expect((await kit('/subscribers/999999')).body).toEqual({ errors: ['Not Found'] })
  })

  it('hides a fresh subscriber from the email lookup until the list lag passes, while GET by id is immediate', async () => {
    const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'dee@example.com' } })
    const id = body.subscriber.id as number

    expect((await kit(`/subscribers/${id}`)).status).toBe(200)
    expect((await kit('/subscribers?email_address=dee%40example.com&status=all')).body.subscribers).toEqual([])

    await sleep(170)
    const found = await kit('/subscribers?email_address=DEE%40example.com&status=all')
    expect(found.body.subscribers.map((s: { id: number }) => s.id)).toEqual([id])
  })

  it("lags list endpoints by Kit's typical 30 seconds unless told otherwise", async () => {
    await standin.close()
    await start()
    const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'lag@example.com' } })
    expect((await kit('/subscribers?email_address=lag%40example.com&status=all')).body.subscribers).toEqual([])
    expect((await kit(`/subscribers/${body.subscriber.id}`)).status).toBe(200)
  })

  it('finds only active subscribers unless status=all is asked', async () => {
    const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'eve@example.com' } })
    expect((await kit(`/subscribers/${body.subscriber.id}/unsubscribe`, { method: 'POST', body: {} })).status).toBe(204)
    expect(standin.account('key_a').subscribers[0]?.state).toBe('cancelled')

    // Once the list lag has passed (the subscriber shows with status=all), the default lookup still finds nobody.
    await waitFor(async () => (await kit('/subscribers?email_address=eve%40example.com&status=all')).body.subscribers.length === 1, {
      what: 'the subscriber listed',
    })
    expect((await kit('/subscribers?email_address=eve%40example.com')).body.subscribers).toEqual([])
  })
})

describe('pagination', () => {
  beforeEach(async () => {
    await start()
    standin.seed('key_a', { tags: ['t1', 't2', 't3', 't4', 't5'] })
  })

  it('walks every page with URL-encoded cursors that contain +, / and =', async () => {
    const names: string[] = []
    let path = '/tags?per_page=2'
    for (;;) {
      const { status, body } = await kit(path)
      expect(status).toBe(200)
      names.push(...body.tags.map((tag: { name: string }) => tag.name))
      const cursor = body.pagination.end_cursor as string
      expect(cursor).toMatch(/\+/)
      expect(cursor).toMatch(/\//)
      expect(cursor).toMatch(/=$/)
      if (!body.pagination.has_next_page) break
      path = `/tags?per_page=2&after=${encodeURIComponent(cursor)}`
    }
    expect(names).toEqual(['t1', 't2', 't3', 't4', 't5'])
  })

  it('pages back with before and reports both directions', async () => {
    const first = await kit('/tags?per_page=2')
    const second = await kit(`/tags?per_page=2&after=${encodeURIComponent(first.body.pagination.end_cursor)}`)
    expect(second.body.pagination).toMatchObject({ has_previous_page: true, has_next_page: true, per_page: 2 })

    const back = await kit(`/tags?per_page=2&before=${encodeURIComponent(second.body.pagination.start_cursor)}`)
    expect(back.body.tags.map((tag: { name: string }) => tag.name)).toEqual(['t1', 't2'])
    expect(back.body.pagination).toMatchObject({ has_previous_page: false, has_next_page: true })
  })

  it('refuses a cursor that was not URL-encoded', async () => {
    const first = await kit('/tags?per_page=2')
    const answer = await kit(`/tags?per_page=2&after=${first.body.pagination.end_cursor}`)
    expect(answer).toMatchObject({ status: 400, body: { errors: ['Invalid cursor'] } })
  })

  it('defaults per_page to 500 and clamps it to 1000', async () => {
    expect((await kit('/tags')).body.pagination.per_page).toBe(500)
    expect((await kit('/tags?per_page=5000')).body.pagination.per_page).toBe(1000)
  })
})

describe('rate limit', () => {
  beforeEach(() => start({ rateLimit: { limit: 3, windowMs: 300 } }))

  it('answers 429 in plain text without Retry-After past the budget, then recovers after the window', async () => {
    for (let i = 0; i < 3; i++) expect((await kit('/tags')).status).toBe(200)

    const refused = await kit('/tags')
    expect(refused.status).toBe(429)
    expect(refused.text).toBe('Retry later')
    expect(refused.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(refused.headers.get('retry-after')).toBeNull()
    expect((await kit('/tags', { key: 'key_b' })).status).toBe(200)

    await sleep(320)
    expect((await kit('/tags')).status).toBe(200)
    expect(standin.requests.filter((request) => request.status === 429)).toHaveLength(1)
  })

  it('does not count refused requests toward the budget', async () => {
    for (let i = 0; i < 3; i++) await kit('/tags')
    await sleep(150)
    for (let i = 0; i < 4; i++) expect((await kit('/tags')).status).toBe(429)
    await sleep(170)
    for (let i = 0; i < 3; i++) expect((await kit('/tags')).status).toBe(200)
  })
})

describe('injected failures', () => {
  beforeEach(() => start())

  it('answers an injected HTML 500 before anything else, then behaves again', async () => {
    const html = "<html><body><h1>We're sorry, but something went wrong.</h1></body></html>"
    standin.injectNext(1, { status: 500, body: html, contentType: 'text/html' })

    const failed = await kit('/account', { key: 'kit_nope' })
    expect(failed.status).toBe(500)
    expect(failed.text).toBe(html)
    expect((await kit('/account')).status).toBe(200)
    expect(standin.requests.map((request) => request.status)).toEqual([500, 200])
  })

  it('drops the connection for a network failure', async () => {
    standin.injectNext(1, 'network')
    await expect(kit('/account')).rejects.toThrow()
    expect((await kit('/account')).status).toBe(200)
    expect(standin.requests).toHaveLength(2)
  })
})

describe('tags, fields, forms and sequences', () => {
  let subscriberId: number

  beforeEach(async () => {
    await start()
    standin.seed('key_a', {
      tags: ['VIP'],
      forms: [{ name: 'Newsletter' }],
      sequences: [{ name: 'Welcome' }, { name: 'Paused', active: false }],
    })
    const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'fay@example.com' } })
    subscriberId = body.subscriber.id
  })

  it('creates tags once, case-insensitively, and refuses a blank name', async () => {
    expect((await kit('/tags', { method: 'POST', body: { name: 'Member' } })).status).toBe(201)
    const again = await kit('/tags', { method: 'POST', body: { name: 'vip' } })
    expect(again).toMatchObject({ status: 200, body: { tag: { name: 'VIP' } } })
    expect(await kit('/tags', { method: 'POST', body: { name: ' ' } })).toMatchObject({
      status: 422,
      body: { errors: ["Name can't be blank"] },
    })
  })

  it('tags by id and by email, then untags with a DELETE body', async () => {
    const tagId = standin.account('key_a').tags[0]!.id
    const tagged = await kit(`/tags/${tagId}/subscribers/${subscriberId}`, { method: 'POST', body: {} })
    expect(tagged.status).toBe(201)
    expect(tagged.body.subscriber).toMatchObject({ id: subscriberId, tagged_at: expect.any(String) })
    expect((await kit(`/tags/${tagId}/subscribers`, { method: 'POST', body: { email_address: 'fay@example.com' } })).status).toBe(200)
    expect(standin.account('key_a').subscribers[0]?.tags.has(tagId)).toBe(true)

    expect((await kit(`/tags/${tagId}/subscribers`, { method: 'DELETE', body: { email_address: 'fay@example.com' } })).status).toBe(204)
    expect(standin.account('key_a').subscribers[0]?.tags.size).toBe(0)
  })

  it('answers 404 for a missing subscriber or tag', async () => {
    const tagId = standin.account('key_a').tags[0]!.id
    expect(await kit(`/tags/${tagId}/subscribers`, { method: 'POST', body: { email_address: 'ghost@example.com' } })).toMatchObject({
      status: 404,
      body: { errors: ['Not Found'] },
    })
    expect((await kit(`/tags/999999/subscribers/${subscriberId}`, { method: 'POST' })).status).toBe(404)
  })

  it('derives field keys from labels, refuses a label the account already has, and nests the blank-label error', async () => {
    const created = await kit('/custom_fields', { method: 'POST', body: { label: 'Access Level (beta)' } })
    expect(created).toMatchObject({ status: 201, body: { custom_field: { key: 'access_level_beta', label: 'Access Level (beta)' } } })
    expect(await kit('/custom_fields', { method: 'POST', body: { label: 'access level (BETA)' } })).toMatchObject({
      status: 422,
      body: { errors: ['Label has already been taken'] },
    })
    const other = await kit('/custom_fields', { method: 'POST', body: { label: 'Renamed later' } })
    expect(
      await kit(`/custom_fields/${(other.body as { custom_field: { id: number } }).custom_field.id}`, {
        method: 'PUT',
        body: { label: 'Access Level (beta)' },
      }),
    ).toMatchObject({ status: 422, body: { errors: ['Label has already been taken'] } })
    expect(standin.account('key_a').customFields.filter((f) => f.label.toLowerCase() === 'access level (beta)')).toHaveLength(1)
    expect(await kit('/custom_fields', { method: 'POST', body: { label: '' } })).toMatchObject({
      status: 422,
      body: { errors: [["Label can't be blank"]] },
    })
  })

  it('adds to a form with 201 then 200, and answers an unknown form with a plain string error', async () => {
    const form = standin.account('key_a').forms[0]!
    const added = await kit(`/forms/${form.id}/subscribers`, {
      method: 'POST',
      body: { email_address: 'fay@example.com', referrer: 'https://club.test' },
    })
    expect(added).toMatchObject({ status: 201, body: { subscriber: { id: subscriberId, referrer: 'https://club.test' } } })
    expect((await kit(`/forms/${form.id}/subscribers`, { method: 'POST', body: { email_address: 'fay@example.com' } })).status).toBe(200)
    expect(form.subscribers).toEqual([subscriberId])

    expect(await kit('/forms/999999/subscribers', { method: 'POST', body: { email_address: 'fay@example.com' } })).toMatchObject({
      status: 404,
      body: { errors: 'Form not found' },
    })
    expect((await kit(`/forms/${form.id}/subscribers`, { method: 'POST', body: { email_address: 'ghost@example.com' } })).status).toBe(404)
  })

  it('adds to an active sequence and refuses an inactive one', async () => {
    const [welcome, paused] = standin.account('key_a').sequences
    expect(
      (await kit(`/sequences/${welcome!.id}/subscribers`, { method: 'POST', body: { email_address: 'fay@example.com' } })).status,
    ).toBe(201)
    expect(await kit(`/sequences/${paused!.id}/subscribers`, { method: 'POST', body: { email_address: 'fay@example.com' } })).toEqual(
      expect.objectContaining({ status: 422, body: { errors: [['Sequence is inactive']] } }),
    )
    expect(await kit('/sequences/999999/subscribers', { method: 'POST', body: { email_address: 'fay@example.com' } })).toEqual(
      expect.objectContaining({ status: 404, body: { errors: [['Not Found']] } }),
    )
    expect(welcome!.subscribers).toEqual([subscriberId])
  })

  it('lists only active forms unless archived or all are asked for, and shows a hosted page with a null format', async () => {
    standin.seed('key_a', {
      forms: [
        { name: 'Old form', archived: true },
        { name: 'Landing page', format: null },
      ],
    })
    const names = async (query: string) => ((await kit(`/forms${query}`)).body.forms as { name: string }[]).map((f) => f.name)
    expect(await names('')).toEqual(['Newsletter', 'Landing page'])
    expect(await names('?status=active')).toEqual(['Newsletter', 'Landing page'])
    expect(await names('?status=archived')).toEqual(['Old form'])
    expect(await names('?status=all')).toEqual(['Newsletter', 'Old form', 'Landing page'])
    const forms = (await kit('/forms')).body.forms as { name: string; format: string | null; type: string }[]
    expect(forms.map((f) => [f.format, f.type])).toEqual([
      ['inline', 'embed'],
      [null, 'hosted'],
    ])
    expect(await names('?type=embed&status=all')).toEqual(['Newsletter', 'Old form'])
    expect(await names('?type=hosted')).toEqual(['Landing page'])
    expect((await kit('/forms?type=popup')).status).toBe(422)
  })

  it('lists legacy forms under /v4/landing_pages (no format), never under /v4/forms, and joins them there by subscriber id only', async () => {
    standin.seed('key_a', {
      forms: [
        { name: 'Old embed', legacy: true },
        { name: 'Old page', legacy: true, type: 'hosted' },
      ],
    })
    const [legacy] = standin.account('key_a').forms.filter((f) => f.legacy)
    const listed = await kit('/landing_pages?type=embed')
    expect(listed.body.legacy_landing_pages).toEqual([
      { id: legacy!.id, name: 'Old embed', created_at: expect.any(String), type: 'embed', url: expect.any(String) },
    ])
    expect(((await kit('/forms?status=all')).body.forms as { name: string }[]).map((f) => f.name)).toEqual(['Newsletter'])

    expect((await kit(`/forms/${legacy!.id}/subscribers/${subscriberId}`, { method: 'POST', body: {} })).status).toBe(404)
    expect((await kit(`/landing_pages/${legacy!.id}/subscribers/${subscriberId}`, { method: 'POST' })).status).toBe(201)
    expect((await kit(`/landing_pages/${legacy!.id}/subscribers/${subscriberId}`, { method: 'POST' })).status).toBe(200)
    expect(legacy!.subscribers).toEqual([subscriberId])
    const newsletter = standin.account('key_a').forms[0]!
    expect((await kit(`/landing_pages/${newsletter.id}/subscribers/${subscriberId}`, { method: 'POST' })).status).toBe(404)
  })

  it('answers 404 for an archived or deleted form, by id and by email', async () => {
    const form = standin.account('key_a').forms[0]!
    standin.archiveForm('key_a', form.id)
    expect(await kit(`/forms/${form.id}/subscribers/${subscriberId}`, { method: 'POST', body: {} })).toMatchObject({
      status: 404,
      body: { errors: 'Form not found' },
    })
    expect((await kit(`/forms/${form.id}/subscribers`, { method: 'POST', body: { email_address: 'fay@example.com' } })).status).toBe(404)
    standin.deleteForm('key_a', form.id)
    expect((await kit(`/forms/${form.id}/subscribers/${subscriberId}`, { method: 'POST', body: {} })).status).toBe(404)
    expect(form.subscribers).toEqual([])
  })
})

describe('routing and isolation', () => {
  beforeEach(() => start())

  it('answers 404 for unknown routes and 400 for malformed JSON', async () => {
    expect(await kit('/broadcasts/nope')).toMatchObject({ status: 404, body: { errors: ['Not Found'] } })
    const malformed = await kit('/tags', { method: 'POST', rawBody: '{"name":', headers: { 'content-type': 'application/json' } })
    expect(malformed).toMatchObject({ status: 400, body: { errors: ['Invalid JSON'] } })
  })

  it('keeps each key in its own account with ids unique across the stand-in', async () => {
    const a = await kit('/tags', { method: 'POST', body: { name: 'Shared name' } })
    const b = await kit('/tags', { method: 'POST', body: { name: 'Shared name' }, key: 'key_b' })
    expect(b.status).toBe(201)
    expect(b.body.tag.id).not.toBe(a.body.tag.id)

    const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'gil@example.com' } })
    expect((await kit(`/subscribers/${body.subscriber.id}`, { key: 'key_b' })).status).toBe(404)
    expect(standin.account('key_b').subscribers).toEqual([])
    expect(standin.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: `/v4/subscribers/${body.subscriber.id}`,
      status: 404,
      key: 'key_b',
    })
  })
})
