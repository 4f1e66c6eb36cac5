// Over 400 lines: one suite for the stand-in's subscriber states, list filters, webhooks and admin API, over HTTP.
/**
 * The Kit stand-in's subscriber states, list filters, legacy webhooks and admin API, driven over
 * HTTP like the plugin and the local App Station drive it.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { startKitStandin, type KitStandin, type StandinOptions, type SubscriberState } from './kit-standin/server.ts'

interface Answer {
  status: number
  // Parsed JSON answer; shapes vary per endpoint and are asserted field by field.
  body: any
}

interface CallOptions {
  method?: string
  key?: string | null
  body?: unknown
}

const STATES: SubscriberState[] = ['active', 'inactive', 'cancelled', 'bounced', 'complained']

let standin: KitStandin

async function start(options: StandinOptions = {}): Promise<void> {
  standin = await startKitStandin({ apiKeys: ['key_a', 'key_b'], listLagMs: 0, ...options })
}

async function call(url: string, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json' }
  const key = options.key === undefined ? 'key_a' : options.key
  if (key !== null) headers['x-kit-api-key'] = key
  let body: string | undefined
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.body)
  }
  const response = await fetch(url, { method: options.method ?? 'GET', headers, body })
  const text = await response.text()
  const isJson = response.headers.get('content-type')?.startsWith('application/json') ?? false
  return { status: response.status, body: isJson ? JSON.parse(text) : undefined }
}

const kit = (path: string, options: CallOptions = {}): Promise<Answer> => call(`${standin.url}/v4${path}`, options)
const admin = (path: string, options: CallOptions = {}): Promise<Answer> => call(`${standin.url}/_admin${path}`, options)

const ids = (answer: Answer): number[] => (answer.body.subscribers as { id: number }[]).map((s) => s.id)
const enc = encodeURIComponent

/** Today's date in the stand-in account's time zone (UTC-5), as Kit's date filters read it. */
function accountDay(offsetDays = 0): string {
  return new Date(Date.now() - 5 * 3_600_000 + offsetDays * 86_400_000).toISOString().slice(0, 10)
}

interface Received {
  path: string
  headers: IncomingHttpHeaders
  body: any
}

/** A webhook target on loopback that records what it receives and answers `status`. */
async function startReceiver(status = 200): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
      res.writeHead(status)
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

afterEach(async () => {
  await standin.close()
})

describe('subscriber states', () => {
  beforeEach(async () => {
    await start()
    standin.seed('key_a', { forms: [{ name: 'Newsletter' }], sequences: [{ name: 'Welcome' }], tags: ['VIP'] })
  })

  it('answers create, upsert and lookups with each state, and an upsert never changes it', async () => {
    for (const state of STATES) {
      const email = `${state}@example.com`
      const created = await kit('/subscribers', { method: 'POST', body: { email_address: email, state } })
      expect(created).toMatchObject({ status: 201, body: { subscriber: { email_address: email, state } } })
      const id = created.body.subscriber.id as number

      const upserted = await kit('/subscribers', { method: 'POST', body: { email_address: email, first_name: 'Again', state: 'active' } })
      expect(upserted).toMatchObject({ status: 200, body: { subscriber: { id, first_name: 'Again', state } } })
      expect((await kit(`/subscribers/${id}`)).body.subscriber).toMatchObject({ id, state })
      expect(ids(await kit(`/subscribers?email_address=${enc(email)}&status=all`))).toEqual([id])
      expect(ids(await kit(`/subscribers?email_address=${enc(email)}&status=${state}`))).toEqual([id])
      expect(ids(await kit(`/subscribers?email_address=${enc(email)}`))).toEqual(state === 'active' ? [id] : [])
    }
    expect(standin.account('key_a').confirmationEmails).toEqual([])
  })

  it('keeps a person who unsubscribed in Kit cancelled through every upsert, sending them nothing', async () => {
    const subscriber = standin.createSubscriber('key_a', { email: 'gone@example.com', state: 'cancelled' })
    for (const state of ['active', 'inactive', undefined]) {
      const answer = await kit('/subscribers', { method: 'POST', body: { email_address: 'GONE@example.com', state } })
      expect(answer).toMatchObject({ status: 200, body: { subscriber: { id: subscriber.id, state: 'cancelled' } } })
    }
    expect(standin.subscriber('key_a', 'gone@example.com').state).toBe('cancelled')
    expect((await admin('/confirmation_emails')).body.confirmation_emails).toEqual([])
  })

  it('makes a cancelled person inactive when added to a form, and records a confirmation email each time', async () => {
    const form = standin.account('key_a').forms[0]!
    const subscriber = standin.createSubscriber('key_a', { email: 'back@example.com', state: 'cancelled' })
    const before = subscriber.updated_at

    const added = await kit(`/forms/${form.id}/subscribers`, { method: 'POST', body: { email_address: 'back@example.com' } })
    expect(added).toMatchObject({ status: 201, body: { subscriber: { id: subscriber.id, state: 'inactive' } } })
    expect(subscriber.updated_at > before).toBe(true)
    const again = await kit(`/forms/${form.id}/subscribers/${subscriber.id}`, { method: 'POST', body: {} })
    expect(again).toMatchObject({ status: 200, body: { subscriber: { state: 'inactive' } } })

    const emails = (await admin('/confirmation_emails')).body.confirmation_emails
    expect(emails).toEqual([
      {
        id: expect.any(Number),
        subscriber_id: subscriber.id,
        email_address: 'back@example.com',
        form_id: form.id,
        sent_at: expect.any(String),
      },
      {
        id: expect.any(Number),
        subscriber_id: subscriber.id,
        email_address: 'back@example.com',
        form_id: form.id,
        sent_at: expect.any(String),
      },
    ])
    expect(ids(await kit('/subscribers?status=cancelled'))).toEqual([])
    expect(ids(await kit('/subscribers?status=inactive'))).toEqual([subscriber.id])
  })

  it('asks an unconfirmed person to confirm through a form, and only confirming makes them active', async () => {
    const form = standin.account('key_a').forms[0]!
    const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'new@example.com', state: 'inactive' } })
    const id = body.subscriber.id as number
    expect((await kit(`/forms/${form.id}/subscribers/${id}`, { method: 'POST', body: {} })).body.subscriber.state).toBe('inactive')
    expect(standin.account('key_a').confirmationEmails.map((email) => email.subscriber_id)).toEqual([id])

    expect(await admin(`/subscribers/${id}/confirm`, { method: 'POST' })).toMatchObject({
      status: 200,
      body: { subscriber: { id, state: 'active' } },
    })
    expect((await kit(`/subscribers/${id}`)).body.subscriber.state).toBe('active')
  })

  it('sends no email to an active, bounced or complained person added to a form, and leaves their state', async () => {
    const form = standin.account('key_a').forms[0]!
    for (const state of ['active', 'bounced', 'complained'] as const) {
      const subscriber = standin.createSubscriber('key_a', { email: `${state}@example.com`, state })
      const added = await kit(`/forms/${form.id}/subscribers`, { method: 'POST', body: { email_address: subscriber.email_address } })
      expect(added).toMatchObject({ status: 201, body: { subscriber: { id: subscriber.id, state } } })
    }
    expect(standin.account('key_a').confirmationEmails).toEqual([])
  })

  it('changes no state and sends no email when a cancelled person is added to a sequence or tagged', async () => {
    const sequence = standin.account('key_a').sequences[0]!
    const tag = standin.account('key_a').tags[0]!
    const subscriber = standin.createSubscriber('key_a', { email: 'quiet@example.com', state: 'cancelled' })
    const before = subscriber.updated_at
    expect(
      await kit(`/sequences/${sequence.id}/subscribers`, { method: 'POST', body: { email_address: 'quiet@example.com' } }),
    ).toMatchObject({ status: 201, body: { subscriber: { state: 'cancelled' } } })
    expect(await kit(`/tags/${tag.id}/subscribers/${subscriber.id}`, { method: 'POST', body: {} })).toMatchObject({
      status: 201,
      body: { subscriber: { state: 'cancelled' } },
    })
    expect(subscriber).toMatchObject({ state: 'cancelled', updated_at: before })
    expect(standin.account('key_a').confirmationEmails).toEqual([])
  })
})

describe('GET /v4/subscribers filters', () => {
  beforeEach(() => start())

  it('filters by each status and by all, defaults to active, and refuses an unknown status', async () => {
    const byState = Object.fromEntries(
      STATES.map((state) => [state, standin.createSubscriber('key_a', { email: `${state}@example.com`, state }).id]),
    )
    for (const state of STATES) expect(ids(await kit(`/subscribers?status=${state}`))).toEqual([byState[state]])
    expect(ids(await kit('/subscribers?status=all'))).toEqual(STATES.map((state) => byState[state]))
    expect(ids(await kit('/subscribers'))).toEqual([byState.active])
    expect(await kit('/subscribers?status=unsubscribed')).toMatchObject({ status: 422, body: { errors: ['Status is invalid'] } })
  })

  it('compares updated_after and updated_before with whole days in the account time zone (UTC-5)', async () => {
    const late = standin.createSubscriber('key_a', { email: 'late@example.com' })
    const early = standin.createSubscriber('key_a', { email: 'early@example.com' })
    late.updated_at = '2026-03-01T12:00:00.000Z'
    // 03:00 UTC on 1 March is still 28 February in the account's time zone.
    early.updated_at = '2026-03-01T03:00:00.000Z'
    const found = async (query: string) => ids(await kit(`/subscribers?status=all&${query}`))
    expect(await found('updated_after=2026-03-01')).toEqual([late.id])
    expect(await found('updated_after=2026-02-28')).toEqual([late.id, early.id])
    expect(await found('updated_after=2026-03-02')).toEqual([])
    expect(await found('updated_before=2026-03-01')).toEqual([early.id])
    expect(await found('updated_before=2026-03-02')).toEqual([late.id, early.id])
    expect(await found('updated_after=2026-02-28&updated_before=2026-03-01')).toEqual([early.id])
    // Only the date of a full timestamp counts: a poll still gets the whole day back.
    expect(await found(`updated_after=${enc('2026-03-01T23:59:59Z')}`)).toEqual([late.id])
    expect(await kit('/subscribers?updated_after=yesterday')).toMatchObject({
      status: 422,
      body: { errors: ['updated_after is not a valid date'] },
    })
    expect((await kit('/subscribers?updated_before=2026-02-30')).status).toBe(422)
  })

  it('filters by created_after and created_before the same way', async () => {
    const old = standin.createSubscriber('key_a', { email: 'old@example.com' })
    const fresh = standin.createSubscriber('key_a', { email: 'fresh@example.com' })
    old.created_at = '2026-01-10T15:00:00Z'
    expect(ids(await kit('/subscribers?created_before=2026-01-11'))).toEqual([old.id])
    expect(ids(await kit(`/subscribers?created_after=${accountDay(-1)}`))).toEqual([fresh.id])
    expect(await kit('/subscribers?created_after=10/01/2026')).toMatchObject({
      status: 422,
      body: { errors: ['created_after is not a valid date'] },
    })
  })

  it('moves updated_at when the state, first name, email or a field changes, and not when nothing changes', async () => {
    standin.seed('key_a', { customFields: ['Plan'], tags: ['VIP'] })
    const created = await kit('/subscribers', { method: 'POST', body: { email_address: 'mo@example.com', first_name: 'Mo' } })
    const id = created.body.subscriber.id as number
    const subscriber = standin.subscriber('key_a', id)
    let last = subscriber.updated_at
    const moved = (): boolean => {
      const changed = subscriber.updated_at > last
      last = subscriber.updated_at
      return changed
    }

    await kit('/subscribers', { method: 'POST', body: { email_address: 'mo@example.com', first_name: 'Mo' } })
    expect(moved()).toBe(false)
    await kit(`/tags/${standin.account('key_a').tags[0]!.id}/subscribers/${id}`, { method: 'POST', body: {} })
    expect(moved()).toBe(false)
    await kit('/subscribers', { method: 'POST', body: { email_address: 'mo@example.com', first_name: 'Maurice' } })
    expect(moved()).toBe(true)
    await kit(`/subscribers/${id}`, { method: 'PUT', body: { fields: { plan: 'Gold' } } })
    expect(moved()).toBe(true)
    await kit(`/subscribers/${id}`, { method: 'PUT', body: { fields: { plan: 'Gold' }, first_name: 'Maurice' } })
    expect(moved()).toBe(false)
    await kit(`/subscribers/${id}`, { method: 'PUT', body: { email_address: 'maurice@example.com' } })
    expect(moved()).toBe(true)
    await kit(`/subscribers/${id}/unsubscribe`, { method: 'POST', body: {} })
    expect(moved()).toBe(true)
    await kit(`/subscribers/${id}/unsubscribe`, { method: 'POST', body: {} })
    expect(moved()).toBe(false)
    await admin(`/subscribers/${id}`, { method: 'PUT', body: { first_name: 'Mo' } })
    expect(moved()).toBe(true)

    expect(ids(await kit(`/subscribers?status=all&updated_after=${accountDay()}`))).toEqual([id])
    expect(ids(await kit(`/subscribers?status=all&updated_before=${accountDay()}`))).toEqual([])
  })

  it('pages through a filtered list with cursors, keeping the filters on every page', async () => {
    const cancelled = Array.from(
      { length: 5 },
      (_, i) => standin.createSubscriber('key_a', { email: `c${i}@example.com`, state: 'cancelled' }).id,
    )
    for (let i = 0; i < 3; i++) standin.createSubscriber('key_a', { email: `a${i}@example.com` })
    const seen: number[] = []
    let path = `/subscribers?status=cancelled&updated_after=${accountDay(-1)}&per_page=2`
    for (;;) {
      const page = await kit(path)
      expect(page.status).toBe(200)
      seen.push(...ids(page))
      if (!page.body.pagination.has_next_page) break
      path = `/subscribers?status=cancelled&updated_after=${accountDay(-1)}&per_page=2&after=${enc(page.body.pagination.end_cursor)}`
    }
    expect(seen).toEqual(cancelled)
  })
})

describe('/v4/webhooks', () => {
  beforeEach(async () => {
    await start()
    standin.seed('key_a', { tags: ['VIP', 'Other'] })
  })

  it('registers, lists and deletes legacy webhooks as Kit answers them, per account', async () => {
    const account = (await kit('/account')).body.account.id as number
    const created = await kit('/webhooks', {
      method: 'POST',
      body: { target_url: 'https://hooks.test/a', event: { name: 'subscriber.subscriber_unsubscribe' } },
    })
    expect(created).toEqual({
      status: 201,
      body: {
        webhook: {
          id: expect.any(Number),
          account_id: account,
          event: { name: 'subscriber_unsubscribe', initiator_value: null },
          target_url: 'https://hooks.test/a',
        },
      },
    })
    const tagId = standin.account('key_a').tags[0]!.id
    const tagged = await kit('/webhooks', {
      method: 'POST',
      body: { target_url: 'https://hooks.test/b', event: { name: 'subscriber.tag_add', tag_id: tagId } },
    })
    expect(tagged.body.webhook.event).toEqual({ name: 'tag_add', tag_id: tagId })

    const listed = await kit('/webhooks')
    expect(listed.body.webhooks).toEqual([created.body.webhook, tagged.body.webhook])
    expect(listed.body.pagination).toMatchObject({ has_previous_page: false, has_next_page: false, per_page: 500 })
    expect((await kit('/webhooks', { key: 'key_b' })).body.webhooks).toEqual([])

    const id = created.body.webhook.id as number
    expect(await kit(`/webhooks/${id}`, { method: 'DELETE', key: 'key_b' })).toMatchObject({ status: 404, body: { errors: ['Not Found'] } })
    expect(await kit(`/webhooks/${id}`, { method: 'DELETE' })).toEqual({ status: 204, body: undefined })
    expect(await kit(`/webhooks/${id}`, { method: 'DELETE' })).toMatchObject({ status: 404, body: { errors: ['Not Found'] } })
    expect((await kit('/webhooks')).body.webhooks).toEqual([tagged.body.webhook])
    expect((await kit('/webhooks', { key: 'nope' })).status).toBe(401)
  })

  it('refuses a registration without event or target, for an unknown event, without its parameter, or to something that is no URL', async () => {
    const register = (body: unknown) => kit('/webhooks', { method: 'POST', body })
    const missing = { status: 422, body: { errors: ['`event` and `target` parameters must be provided'] } }
    expect(await register({ event: { name: 'subscriber.subscriber_bounce' } })).toEqual(missing)
    expect(await register({ target_url: 'https://hooks.test/' })).toEqual(missing)
    expect(await register({ target_url: 'https://hooks.test/', event: {} })).toEqual(missing)
    expect(await register({ target_url: 'https://hooks.test/', event: { name: 'subscriber.unsubscribed' } })).toMatchObject({
      status: 422,
      body: { errors: ['Event name is invalid'] },
    })
    expect(await register({ target_url: 'https://hooks.test/', event: { name: 'subscriber.form_subscribe' } })).toMatchObject({
      status: 422,
      body: { errors: ['`form_id` must be provided for this event'] },
    })
    expect(await register({ target_url: 'hooks.test/in', event: { name: 'subscriber.subscriber_bounce' } })).toMatchObject({
      status: 422,
      body: { errors: ['Target url is invalid'] },
    })
    expect(standin.account('key_a').webhooks).toEqual([])
  })

  it("delivers Kit's legacy body, unsigned, once to each webhook listening when a person unsubscribes, bounces or complains", async () => {
    const receiver = await startReceiver()
    try {
      for (const event of ['unsubscribe', 'bounce', 'complain']) {
        await kit('/webhooks', {
          method: 'POST',
          body: { target_url: `${receiver.url}/${event}`, event: { name: `subscriber.subscriber_${event}` } },
        })
      }
      await kit('/webhooks', {
        key: 'key_b',
        method: 'POST',
        body: { target_url: `${receiver.url}/other-account`, event: { name: 'subscriber.subscriber_unsubscribe' } },
      })
      standin.seed('key_a', { customFields: ['Plan'] })
      const ada = standin.createSubscriber('key_a', { email: 'ada@example.com', firstName: 'Ada' })
      const bo = standin.createSubscriber('key_a', { email: 'bo@example.com' })
      standin.editSubscriber('key_a', ada.id, { fields: { plan: 'Gold' } })

      expect((await admin('/subscribers/ada%40example.com/unsubscribe', { method: 'POST' })).status).toBe(200)
      await admin('/subscribers/ada%40example.com/unsubscribe', { method: 'POST' })
      await admin(`/subscribers/${bo.id}/bounce`, { method: 'POST' })
      await admin(`/subscribers/${bo.id}/complain`, { method: 'POST' })
      await standin.settleWebhooks()

      expect(receiver.received.map((r) => r.path)).toEqual(['/unsubscribe', '/bounce', '/complain'])
      expect(receiver.received[0]!.body).toEqual({
        subscriber: {
          id: ada.id,
          first_name: 'Ada',
          email_address: 'ada@example.com',
          state: 'cancelled',
          created_at: ada.created_at,
          fields: { plan: 'Gold' },
        },
      })
      expect(receiver.received[2]!.body.subscriber).toMatchObject({ id: bo.id, state: 'complained' })
      for (const { headers } of receiver.received) {
        expect(headers['content-type']).toBe('application/json')
        expect(Object.keys(headers).filter((name) => /signature|webhook|kit/i.test(name))).toEqual([])
      }
      expect(standin.webhookDeliveries.map((d) => [d.event, d.status])).toEqual([
        ['subscriber.subscriber_unsubscribe', 200],
        ['subscriber.subscriber_bounce', 200],
        ['subscriber.subscriber_complain', 200],
      ])
    } finally {
      await receiver.close()
    }
  })

  it('fires on an unsubscribe through the API too, and a tag webhook only for its tag', async () => {
    const receiver = await startReceiver()
    try {
      const [vip, other] = standin.account('key_a').tags
      await kit('/webhooks', {
        method: 'POST',
        body: { target_url: `${receiver.url}/gone`, event: { name: 'subscriber.subscriber_unsubscribe' } },
      })
      await kit('/webhooks', {
        method: 'POST',
        body: { target_url: `${receiver.url}/vip`, event: { name: 'subscriber.tag_add', tag_id: vip!.id } },
      })
      const { body } = await kit('/subscribers', { method: 'POST', body: { email_address: 'cy@example.com' } })
      const id = body.subscriber.id as number
      await kit(`/tags/${other!.id}/subscribers/${id}`, { method: 'POST', body: {} })
      await kit(`/tags/${vip!.id}/subscribers`, { method: 'POST', body: { email_address: 'cy@example.com' } })
      await kit(`/tags/${vip!.id}/subscribers/${id}`, { method: 'POST', body: {} })
      await kit(`/subscribers/${id}/unsubscribe`, { method: 'POST', body: {} })
      await standin.settleWebhooks()
      expect(receiver.received.map((r) => [r.path, r.body.subscriber.state])).toEqual([
        ['/vip', 'active'],
        ['/gone', 'cancelled'],
      ])
    } finally {
      await receiver.close()
    }
  })

  it('never retries a delivery the target refused or never answered', async () => {
    const refusing = await startReceiver(500)
    const closed = await startReceiver()
    await closed.close()
    try {
      await kit('/webhooks', {
        method: 'POST',
        body: { target_url: `${refusing.url}/in`, event: { name: 'subscriber.subscriber_bounce' } },
      })
      await kit('/webhooks', { method: 'POST', body: { target_url: `${closed.url}/in`, event: { name: 'subscriber.subscriber_bounce' } } })
      const subscriber = standin.createSubscriber('key_a', { email: 'dee@example.com' })
      standin.changeState('key_a', subscriber.id, 'bounced')
      await standin.settleWebhooks()
      // A later change gives the stand-in every chance to send a retry with it; none comes.
      standin.changeState('key_a', subscriber.id, 'complained')
      await standin.settleWebhooks()
      expect(refusing.received).toHaveLength(1)
      expect(standin.webhookDeliveries.map((d) => [d.target_url, d.status])).toEqual([
        [`${refusing.url}/in`, 500],
        [`${closed.url}/in`, 0],
      ])
    } finally {
      await refusing.close()
    }
  })
})

describe('admin API', () => {
  beforeEach(() => start())

  it("renames a person and changes their email as in Kit's app, and refuses a taken email or an unknown person", async () => {
    const ada = standin.createSubscriber('key_a', { email: 'ada@example.com', firstName: 'Ada' })
    standin.createSubscriber('key_a', { email: 'taken@example.com' })
    const before = ada.updated_at
    const renamed = await admin('/subscribers/ADA%40example.com', {
      method: 'PUT',
      body: { first_name: 'Ada L.', email_address: 'ada.l@example.com' },
    })
    expect(renamed).toMatchObject({
      status: 200,
      body: { subscriber: { id: ada.id, first_name: 'Ada L.', email_address: 'ada.l@example.com' } },
    })
    expect(renamed.body.subscriber.updated_at > before).toBe(true)
    expect((await kit(`/subscribers/${ada.id}`)).body.subscriber).toMatchObject({
      first_name: 'Ada L.',
      email_address: 'ada.l@example.com',
    })
    expect(await admin(`/subscribers/${ada.id}`)).toMatchObject({
      status: 200,
      body: { subscriber: { state: 'active', email_address: 'ada.l@example.com' } },
    })

    expect(await admin(`/subscribers/${ada.id}`, { method: 'PUT', body: { email_address: 'taken@example.com' } })).toMatchObject({
      status: 422,
      body: { errors: ['Email address has already been taken'] },
    })
    expect(await admin(`/subscribers/${ada.id}`, { method: 'PUT', body: { fields: { nope: 'x' } } })).toMatchObject({
      status: 422,
      body: { errors: ["Custom field 'nope' does not exist"] },
    })
    expect(await admin('/subscribers/ghost%40example.com/unsubscribe', { method: 'POST' })).toMatchObject({
      status: 404,
      body: { errors: ['Not Found'] },
    })
    expect(await admin(`/subscribers/${ada.id}/delete`, { method: 'POST' })).toMatchObject({ status: 404 })
    expect(await admin(`/subscribers/${ada.id}`, { key: 'key_b' })).toMatchObject({ status: 404 })
    expect(await admin(`/subscribers/${ada.id}`, { key: 'nope' })).toMatchObject({
      status: 401,
      body: { errors: ['The API key is invalid'] },
    })
    expect(standin.subscriber('key_a', ada.id).email_address).toBe('ada.l@example.com')
  })

  it('is not Kit: its requests are not recorded, not rate limited and never take an injected failure', async () => {
    await standin.close()
    await start({ rateLimit: { limit: 1, windowMs: 60_000 } })
    const subscriber = standin.createSubscriber('key_a', { email: 'eve@example.com' })
    standin.injectNext(1, { status: 500, body: 'boom', contentType: 'text/plain' })
    for (let i = 0; i < 3; i++) expect((await admin(`/subscribers/${subscriber.id}`)).status).toBe(200)
    expect((await admin(`/subscribers/${subscriber.id}/unsubscribe`, { method: 'POST' })).body.subscriber.state).toBe('cancelled')
    expect(standin.requests).toEqual([])
    expect((await kit('/account')).status).toBe(500)
    expect((await kit('/account')).status).toBe(200)
    expect((await kit('/account')).status).toBe(429)
  })

  it('shows the confirmation emails and webhook deliveries of its own account only', async () => {
    const receiver = await startReceiver()
    try {
      standin.seed('key_a', { forms: [{ name: 'Newsletter' }] })
      const form = standin.account('key_a').forms[0]!
      standin.createSubscriber('key_a', { email: 'fay@example.com', state: 'cancelled' })
      await kit(`/forms/${form.id}/subscribers`, { method: 'POST', body: { email_address: 'fay@example.com' } })
      const hook = await kit('/webhooks', {
        method: 'POST',
        body: { target_url: `${receiver.url}/in`, event: { name: 'subscriber.subscriber_activate' } },
      })
      await admin('/subscribers/fay%40example.com/confirm', { method: 'POST' })
      await standin.settleWebhooks()

      expect((await admin('/confirmation_emails')).body.confirmation_emails).toMatchObject([
        { email_address: 'fay@example.com', form_id: form.id },
      ])
      expect((await admin('/webhook_deliveries')).body.webhook_deliveries).toEqual([
        {
          at: expect.any(String),
          webhook_id: hook.body.webhook.id,
          event: 'subscriber.subscriber_activate',
          target_url: `${receiver.url}/in`,
          status: 200,
          body: { subscriber: expect.objectContaining({ email_address: 'fay@example.com', state: 'active' }) },
        },
      ])
      expect((await admin('/confirmation_emails', { key: 'key_b' })).body.confirmation_emails).toEqual([])
      expect((await admin('/webhook_deliveries', { key: 'key_b' })).body.webhook_deliveries).toEqual([])
    } finally {
      await receiver.close()
    }
  })
})
