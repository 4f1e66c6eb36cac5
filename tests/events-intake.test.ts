import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from './helpers/app.ts'
import { makeEvent, postEvent, signedHeaders } from './helpers/events.ts'

let app: FastifyInstance
let secret: string
const oldSecret = randomBytes(32).toString('base64')

beforeEach(async () => {
  secret = randomBytes(32).toString('base64')
  ;({ app } = await buildTestApp({ eventsSecrets: [secret, oldSecret] }))
})
afterEach(async () => {
  await app.close()
})

const stored = () => (app.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n

describe('event intake', () => {
  it('accepts a signed event with 202 after storing it', async () => {
    const event = makeEvent({ type: 'subscription.started' })
    const res = await postEvent(app, secret, event)
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ status: 'accepted', id: event.id })
    expect(stored()).toBe(1)
    const delivery = app.sqlite.prepare('SELECT event_type, member_email FROM deliveries').get()
    expect(delivery).toEqual({ event_type: 'subscription.started', member_email: (event.data as any).member.email })
  })

  it('verifies signatures over the raw bytes of non-ASCII bodies', async () => {
    const event = makeEvent({ firstName: 'Zoë 🎉 Łukasz' })
    expect((await postEvent(app, secret, event)).statusCode).toBe(202)
    const row = app.sqlite.prepare('SELECT payload FROM events').get() as { payload: string }
    expect(JSON.parse(row.payload).data.member.first_name).toBe('Zoë 🎉 Łukasz')
  })

  it('commits concurrent events together and still answers each after its commit', async () => {
    const events = Array.from({ length: 20 }, () => makeEvent())
    const answers = await Promise.all([...events, events[0]!].map((e) => postEvent(app, secret, e)))
    expect(answers.map((a) => a.statusCode).sort()).toEqual([...Array(20).fill(202), 200].sort())
    expect(stored()).toBe(20)
  })

  it('answers 200 duplicate for an id already seen, storing nothing more', async () => {
    const event = makeEvent()
    await postEvent(app, secret, event)
    const again = await postEvent(app, secret, event)
    expect(again.statusCode).toBe(200)
    expect(again.json()).toEqual({ status: 'duplicate', id: event.id })
    expect(stored()).toBe(1)
  })

  it('accepts application/json too', async () => {
    const event = makeEvent()
    const body = JSON.stringify(event)
    const headers = { ...signedHeaders(body, { secret }), 'content-type': 'application/json' }
    expect((await app.inject({ method: 'POST', url: '/events', payload: body, headers })).statusCode).toBe(202)
  })

  it('accepts a signature made with the previous secret during rotation', async () => {
    expect((await postEvent(app, oldSecret, makeEvent())).statusCode).toBe(202)
  })

  it('accepts when one of several signatures is valid', async () => {
    const res = await postEvent(app, secret, makeEvent(), { extraSignatures: ['v1,bm90IGEgc2lnbmF0dXJl', 'v2,whatever'] })
    expect(res.statusCode).toBe(202)
  })

  it('refuses a signature made with an unknown secret', async () => {
    const res = await postEvent(app, randomBytes(32).toString('base64'), makeEvent())
    expect(res.statusCode).toBe(401)
    expect(stored()).toBe(0)
  })

  it('refuses missing signature headers', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/events',
      payload: JSON.stringify(makeEvent()),
      headers: { 'content-type': 'application/json' },
    })
    expect(res.statusCode).toBe(401)
  })

  it('refuses timestamps more than 5 minutes off, either way', async () => {
    const now = Math.floor(Date.now() / 1000)
    expect((await postEvent(app, secret, makeEvent(), { timestamp: now - 301 })).statusCode).toBe(401)
    expect((await postEvent(app, secret, makeEvent(), { timestamp: now + 301 })).statusCode).toBe(401)
    expect((await postEvent(app, secret, makeEvent(), { timestamp: now - 240 })).statusCode).toBe(202)
    expect(stored()).toBe(1)
  })

  it('refuses a body altered after signing', async () => {
    const event = makeEvent()
    const body = JSON.stringify(event)
    const headers = signedHeaders(body, { secret })
    const res = await app.inject({ method: 'POST', url: '/events', payload: body.replace('example.com', 'evil.com'), headers })
    expect(res.statusCode).toBe(401)
  })

  it('refuses bodies over 256 KiB with 413', async () => {
    const event = makeEvent({ fields: { mk_blob: 'x'.repeat(300 * 1024) } })
    const res = await postEvent(app, secret, event)
    expect(res.statusCode).toBe(413)
    expect(stored()).toBe(0)
  })

  const malformed: [string, (e: any) => void, RegExp][] = [
    ['a wrong specversion', (e) => (e.specversion = '0.3'), /specversion/],
    ['no source', (e) => delete e.source, /source is required/],
    ['no type', (e) => delete e.type, /type is required/],
    ['no communityid', (e) => delete e.communityid, /communityid is required/],
    ['a bad time', (e) => (e.time = 'yesterday'), /time/],
    ['no data', (e) => delete e.data, /data is required/],
    ['no member', (e) => delete e.data.member, /data\.member is required/],
    ['no member id', (e) => delete e.data.member.id, /data\.member\.id is required/],
    ['no member email', (e) => delete e.data.member.email, /data\.member\.email is required/],
    ['a bad email', (e) => (e.data.member.email = 'not-an-email'), /data\.member\.email is not an email/],
    ['a numeric field value', (e) => (e.data.member.fields = { mk_plan: 3 }), /data\.member\.fields\.mk_plan/],
    [
      'a subscription event without subscription',
      (e) => {
        e.type = 'subscription.started'
        delete e.data.subscription
      },
      /data\.subscription is required/,
    ],
    [
      'a subscription without id',
      (e) => {
        e.type = 'subscription.canceled'
        e.data.subscription = { plan: 'x' }
      },
      /data\.subscription\.id/,
    ],
    [
      'an access event without level',
      (e) => {
        e.type = 'access.granted'
        e.data.access = {}
      },
      /data\.access\.level/,
    ],
  ]
  for (const [what, mutate, message] of malformed) {
    it(`refuses ${what} with 400 invalid_event naming the field, storing nothing`, async () => {
      const event = makeEvent()
      mutate(event)
      const res = await postEvent(app, secret, event, { id: (event.id as string | undefined) ?? 'evt_x' })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe('invalid_event')
      expect(res.json().error.message).toMatch(message)
      expect(stored()).toBe(0)
    })
  }

  const refusedEmails: [string, string][] = [
    ['NUL', 'ann\u0000@example.com'],
    ['a line feed', 'ann@example.com\n'],
    ['a carriage return', 'ann\r@example.com'],
    ['a tab', 'ann@exa\tmple.com'],
    ['DEL', 'ann\u007f@example.com'],
    ['a C1 control', 'ann\u0085@example.com'],
    ['a zero-width space', 'ann\u200b@example.com'],
    ['a right-to-left mark', 'ann@example.com\u200f'],
    ['a right-to-left override', 'ann\u202e@example.com'],
    ['a right-to-left isolate', 'ann\u2067@example.com'],
    ['a byte-order mark', '\ufeffann@example.com'],
  ]
  for (const [what, email] of refusedEmails) {
    it(`refuses an email holding ${what} with 400 invalid_event naming the field, storing nothing`, async () => {
      const event = makeEvent({ email })
      const res = await postEvent(app, secret, event)
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toEqual({
        code: 'invalid_event',
        message: 'data.member.email contains a control or bidirectional character',
      })
      expect(stored()).toBe(0)
    })
  }

  it('refuses a first name holding control characters, storing nothing', async () => {
    for (const firstName of ['Ann\u0000', 'Ann\nBcc: x', 'Ann\u009b']) {
      const res = await postEvent(app, secret, makeEvent({ firstName }))
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toEqual({ code: 'invalid_event', message: 'data.member.first_name contains a control character' })
    }
    expect(stored()).toBe(0)
  })

  it('accepts a first name in a right-to-left script with bidirectional marks', async () => {
    const firstName = '\u2067\u05d3\u05e0\u05d4\u2069\u200f'
    expect((await postEvent(app, secret, makeEvent({ firstName }))).statusCode).toBe(202)
    const row = app.sqlite.prepare('SELECT payload FROM events').get() as { payload: string }
    expect(JSON.parse(row.payload).data.member.first_name).toBe(firstName)
  })

  it('refuses a body that is not JSON, and an id that differs from webhook-id', async () => {
    const body = '{"specversion":'
    const res = await app.inject({ method: 'POST', url: '/events', payload: body, headers: signedHeaders(body, { secret, id: 'evt_1' }) })
    expect(res.statusCode).toBe(400)
    const event = makeEvent()
    const mismatch = await postEvent(app, secret, event, { id: 'evt_other' })
    expect(mismatch.statusCode).toBe(400)
    expect(mismatch.json().error.message).toMatch(/webhook-id/)
    expect(stored()).toBe(0)
  })

  it('records well-formed events of other types as skipped', async () => {
    const res = await postEvent(app, secret, makeEvent({ type: 'community.renamed' }))
    expect(res.statusCode).toBe(202)
    const row = app.sqlite.prepare('SELECT status, last_error, reason FROM deliveries').get() as {
      status: string
      last_error: string
      reason: string
    }
    expect(row.status).toBe('skipped')
    expect(row.reason).toBe('unknown_event_type')
    expect(row.last_error).toContain('community.renamed')
  })

  it('counts intake outcomes in /metrics', async () => {
    await postEvent(app, secret, makeEvent())
    await postEvent(app, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', makeEvent())
    const text = (await app.inject('/metrics')).body
    expect(text).toMatch(/kit_events_received_total\{status="accepted"\} 1/)
    expect(text).toMatch(/kit_events_received_total\{status="unauthorized"\} 1/)
    expect(text).toMatch(/kit_queue_depth\{status="(pending|skipped)"\}/)
  })
})
