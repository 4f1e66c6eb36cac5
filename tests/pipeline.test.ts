// Over 400 lines: the delivery pipeline end to end, one harness shared by its event types, mappings and failures.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { StandinOptions } from './kit-standin/server.ts'
import { makeEvent, waitFor, type EventInput } from './helpers/events.ts'
import { asA, asB, KEY, KEY_B, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness

async function setup(kit: StandinOptions = {}, rate = { kitRateLimit: 120, kitRateWindowMs: 60_000 }) {
  h = await PipelineHarness.start({ kit, config: rate })
}

beforeEach(async () => {
  await setup()
})
afterEach(async () => {
  await h.close()
})

const send = async (input: EventInput) => {
  const event = makeEvent(input)
  const res = await h.post(event)
  expect(res.statusCode).toBe(202)
  return event
}

const deliveryOf = (eventId: string) => h.delivery(eventId)
const settled = (eventId: string) => h.settled(eventId)
/** Sends a member event and waits until its delivery settled. */
const sendSettled = async (input: EventInput) => settled((await send(input)).id as string)
const subscriber = (email: string, key = KEY) => h.subscriber(email, key)
const tagNames = (email: string, key = KEY) => h.tagNames(email, key)
/** Connects community A and maps user.signed_up to a sequence Kit holds inactive. */
async function mapSignUpToPausedSequence() {
  h.kit.seed(KEY, { sequences: [{ name: 'Paused', active: false }] })
  await h.connect()
  const sequence = h.kit.account(KEY).sequences[0]!
  const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
  doc.events['user.signed_up'].add_to_sequences = [{ id: sequence.id, name: sequence.name }]
  expect((await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })).statusCode).toBe(200)
}

const kitCalls = () => h.kit.requests.filter((r) => r.path !== '/v4/account').length

describe('each event type against Kit', () => {
  it('user.signed_up creates the subscriber with mapped fields (by key) and tags New Member', async () => {
    await h.connect()
    const e = await send({
      type: 'user.signed_up',
      memberId: 'm_ada',
      email: '  Ada@Example.com ',
      firstName: 'Ada',
      fields: { mk_subscription_plan: 'free' },
    })
    expect((await settled(e.id as string)).status).toBe('succeeded')
    const s = subscriber('ada@example.com')
    expect(s).toMatchObject({ first_name: 'Ada', state: 'active' })
    expect(s?.fields).toMatchObject({ subscription_plan: 'free' })
    expect(h.kit.account(KEY).customFields.map((f) => f.key)).toContain('subscription_plan')
    expect(tagNames('ada@example.com')).toEqual(['New Member'])
  })

  it('subscription.started and .canceled swap Active Member and Cancelled', async () => {
    await h.connect()
    const started = await send({
      type: 'subscription.started',
      memberId: 'm_b',
      email: 'b@example.com',
      subscription: { id: 's_1', plan: 'pro', status: 'active' },
    })
    await settled(started.id as string)
    expect(tagNames('b@example.com')).toEqual(['Active Member'])
    const canceled = await send({
      type: 'subscription.canceled',
      memberId: 'm_b',
      email: 'b@example.com',
      subscription: { id: 's_1', plan: 'pro', status: 'canceled' },
    })
    expect((await settled(canceled.id as string)).status).toBe('succeeded')
    expect(tagNames('b@example.com')).toEqual(['Cancelled'])
  })

  it('access.granted and .revoked add and remove the templated tag', async () => {
    await h.connect()
    const granted = await send({
      type: 'access.granted',
      memberId: 'm_c',
      email: 'c@example.com',
      access: { level: 'gold' },
      fields: { mk_access_level: 'gold' },
    })
    await settled(granted.id as string)
    expect(tagNames('c@example.com')).toEqual(['Access: gold'])
    expect(subscriber('c@example.com')?.fields).toMatchObject({ access_level: 'gold' })
    const revoked = await send({ type: 'access.revoked', memberId: 'm_c', email: 'c@example.com', access: { level: 'gold' } })
    await settled(revoked.id as string)
    expect(tagNames('c@example.com')).toEqual([])
  })

  it('user.updated writes changed fields with PUT to the existing subscriber', async () => {
    await h.connect()
    await sendSettled({ type: 'user.signed_up', memberId: 'm_d', email: 'd@example.com', fields: { mk_subscription_plan: 'free' } })
    const before = h.kit.requests.length
    const updated = await send({ type: 'user.updated', memberId: 'm_d', email: 'd@example.com', fields: { mk_subscription_plan: 'pro' } })
    expect((await settled(updated.id as string)).status).toBe('succeeded')
    expect(subscriber('d@example.com')?.fields).toMatchObject({ subscription_plan: 'pro' })
    expect(h.kit.requests.slice(before).map((r) => `${r.method} ${r.path.replace(/\/\d+/g, '/:id')}`)).toEqual(['PUT /v4/subscribers/:id'])
  })

  it('user.updated with a new email address moves the same subscriber to it', async () => {
    await h.connect()
    await sendSettled({ type: 'user.signed_up', memberId: 'm_mv', email: 'old@example.com' })
    const moved = await send({ type: 'user.updated', memberId: 'm_mv', email: 'New@Example.com' })
    expect((await settled(moved.id as string)).status).toBe('succeeded')
    expect(subscriber('old@example.com')).toBeUndefined()
    expect(tagNames('new@example.com')).toEqual(['New Member'])
    expect(h.kit.account(KEY).subscribers).toHaveLength(1)
  })

  it('user.deleted applies its mapping (unsubscribe) without creating anyone', async () => {
    await h.connect()
    const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    doc.events['user.deleted'].unsubscribe = true
    await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
    await sendSettled({ type: 'user.signed_up', memberId: 'm_e', email: 'e@example.com' })
    const deleted = await send({ type: 'user.deleted', memberId: 'm_e', email: 'e@example.com' })
    expect((await settled(deleted.id as string)).status).toBe('succeeded')
    expect(subscriber('e@example.com')?.state).toBe('cancelled')
    const ghost = await send({ type: 'user.deleted', memberId: 'm_ghost', email: 'ghost@example.com' })
    expect((await settled(ghost.id as string)).status).toBe('skipped')
    expect(subscriber('ghost@example.com')).toBeUndefined()
  })

  it('adds to forms (creating the subscriber inactive first) and sequences', async () => {
    h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }], sequences: [{ name: 'Welcome' }] })
    await h.connect()
    const form = h.kit.account(KEY).forms[0]!
    const sequence = h.kit.account(KEY).sequences[0]!
    const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    doc.events['user.signed_up'].add_to_forms = [{ id: form.id, name: form.name }]
    doc.events['user.signed_up'].add_to_sequences = [{ id: sequence.id, name: sequence.name }]
    await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
    const e = await send({ type: 'user.signed_up', memberId: 'm_f', email: 'f@example.com' })
    expect((await settled(e.id as string)).status).toBe('succeeded')
    const s = subscriber('f@example.com')!
    expect(s.state).toBe('inactive')
    expect(h.kit.account(KEY).forms[0]!.subscribers).toContain(s.id)
    expect(h.kit.account(KEY).sequences[0]!.subscribers).toContain(s.id)
  })

  it("fails on an inactive sequence naming it, with Kit's message and what was already applied", async () => {
    await mapSignUpToPausedSequence()
    const e = await send({ type: 'user.signed_up', memberId: 'm_g', email: 'g@example.com' })
    const d = await settled(e.id as string)
    expect(d.status).toBe('failed')
    expect(d.last_error).toMatch(
      /^Subscriber created, tag "New Member" added; not added to sequence "Paused": the sequence is inactive in Kit \(Kit said "Sequence is inactive"\)/,
    )
    expect(d.last_error).toMatch(/Turn it on in Kit or take it out of the user\.signed_up mapping/)
    const steps = JSON.parse((h.app.sqlite.prepare('SELECT steps FROM deliveries WHERE event_id = ?').get(e.id) as { steps: string }).steps)
    expect(steps.map((step: { action: string }) => step.action)).toEqual(['subscriber.created', 'tag.added', 'failed'])
  })

  it('records events of a community without a connection as skipped when they arrive, with the reason', async () => {
    const e = await send({ type: 'user.signed_up' })
    const d = deliveryOf(e.id as string)!
    expect(d).toMatchObject({ status: 'skipped', attempts: 0 })
    expect(d.reason).toBe('not_connected')
    expect(h.kit.requests).toHaveLength(0)
  })
})

const putMappings = (change: (doc: any) => void) => h.putMappings(change)
const callsSince = (from: number) => h.callsSince(from)

/** A Kit answer to a subscriber write that names fields it did not write, as current Kit does. */
const warningAnswer = (id: number, email: string, fields: Record<string, string>, warnings: string[]) => ({
  status: 200,
  body: JSON.stringify({
    subscriber: { id, first_name: null, email_address: email, state: 'active', created_at: '2026-01-01T00:00:00Z', fields },
    warnings,
  }),
})

describe("following Kit's documented behaviour", () => {
  it('clears an emptied member field with "" (Kit refuses null)', async () => {
    await h.connect()
    await sendSettled({ type: 'user.signed_up', memberId: 'm_clr', email: 'clr@example.com', fields: { mk_subscription_plan: 'pro' } })
    const cleared = await send({
      type: 'user.updated',
      memberId: 'm_clr',
      email: 'clr@example.com',
      fields: { mk_subscription_plan: null },
    })
    expect((await settled(cleared.id as string)).status).toBe('succeeded')
    expect(subscriber('clr@example.com')?.fields).toEqual({ subscription_plan: '' })
  })

  it("reads Kit's field list again and writes within the same delivery when Kit no longer knows a field key", async () => {
    await h.connect()
    await sendSettled({ type: 'user.signed_up', memberId: 'm_fk', email: 'fk@example.com', fields: { mk_subscription_plan: 'free' } })
    // The field is deleted in Kit after the plugin learnt its key.
    const fields = h.kit.account(KEY).customFields
    fields.splice(
      fields.findIndex((f) => f.key === 'subscription_plan'),
      1,
    )
    const before = h.kit.requests.length
    const updated = await send({ type: 'user.updated', memberId: 'm_fk', email: 'fk@example.com', fields: { mk_subscription_plan: 'pro' } })
    expect((await settled(updated.id as string)).status).toBe('succeeded')
    expect(callsSince(before)).toEqual([
      'PUT /v4/subscribers/:id 200',
      'GET /v4/custom_fields 200',
      'POST /v4/custom_fields 201',
      'PUT /v4/subscribers/:id 200',
    ])
    expect(subscriber('fk@example.com')?.fields).toMatchObject({ subscription_plan: 'pro' })
  })

  it('treats a 422 naming an unknown field like the warnings: refreshes the field list once and writes again', async () => {
    await h.connect()
    await sendSettled({ type: 'user.signed_up', memberId: 'm_422', email: 'u422@example.com', fields: { mk_subscription_plan: 'free' } })
    h.kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: ["Custom field 'subscription_plan' does not exist"] }) })
    const before = h.kit.requests.length
    const updated = await send({
      type: 'user.updated',
      memberId: 'm_422',
      email: 'u422@example.com',
      fields: { mk_subscription_plan: 'pro' },
    })
    expect((await settled(updated.id as string)).status).toBe('succeeded')
    expect(callsSince(before)).toEqual(['PUT /v4/subscribers/:id 422', 'GET /v4/custom_fields 200', 'PUT /v4/subscribers/:id 200'])
    expect(subscriber('u422@example.com')?.fields).toMatchObject({ subscription_plan: 'pro' })
  })

  it('fails naming the field that stays unwritten after the refresh, and says what was applied', async () => {
    await h.connect()
    const fields = { mk_subscription_plan: 'free', mk_access_level: 'silver' }
    await sendSettled({ type: 'user.signed_up', memberId: 'm_uw', email: 'uw@example.com', fields })
    const s = subscriber('uw@example.com')!
    const warning = ["Custom field 'subscription_plan' does not exist"]
    const list = {
      custom_fields: h.kit.account(KEY).customFields.map((f) => ({ id: f.id, name: f.name, key: f.key, label: f.label })),
      pagination: { has_previous_page: false, has_next_page: false, start_cursor: null, end_cursor: null, per_page: 1000 },
    }
    h.kit.injectNext(1, warningAnswer(s.id, s.email_address, { subscription_plan: 'free', access_level: 'gold' }, warning))
    h.kit.injectNext(1, { status: 200, body: JSON.stringify(list) })
    h.kit.injectNext(1, warningAnswer(s.id, s.email_address, { subscription_plan: 'free', access_level: 'gold' }, warning))
    const updated = await send({
      type: 'user.updated',
      memberId: 'm_uw',
      email: 'uw@example.com',
      fields: { mk_subscription_plan: 'pro', mk_access_level: 'gold' },
    })
    const d = await settled(updated.id as string)
    expect(d.status).toBe('failed')
    expect(d.last_error).toMatch(
      /^Subscriber updated, fields written \(Access level\); field "Subscription plan" \(key subscription_plan, from mk_subscription_plan\) not written: Kit said "Custom field 'subscription_plan' does not exist"/,
    )
  })

  it("fails with Kit's message when Kit refuses a new email address for another reason than it being taken", async () => {
    await h.connect()
    await sendSettled({ type: 'user.signed_up', memberId: 'm_em', email: 'em-old@example.com' })
    h.kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: ['Email address is invalid'] }) })
    const moved = await send({ type: 'user.updated', memberId: 'm_em', email: 'em-new@example.com' })
    const d = await settled(moved.id as string)
    expect(d.status).toBe('failed')
    expect(d.last_error).toMatch(/Email address is invalid/)
    expect(h.kit.account(KEY).subscribers.map((x) => x.email_address)).toEqual(['em-old@example.com'])

    // Kit saying the address is taken still means: use the subscriber that has it.
    await sendSettled({ type: 'user.signed_up', memberId: 'm_em2', email: 'em-other@example.com' })
    const taken = await send({
      type: 'user.updated',
      memberId: 'm_em',
      email: 'em-other@example.com',
      fields: { mk_subscription_plan: 'pro' },
    })
    expect((await settled(taken.id as string)).status).toBe('succeeded')
    expect(subscriber('em-other@example.com')?.fields).toMatchObject({ subscription_plan: 'pro' })
  })

  it("learns a new field's key from Kit's answer and stores it in the mapping instead of the panel's guess", async () => {
    await h.connect()
    await putMappings((doc) => doc.fields.push({ source: 'mk_street', kit_field: { key: 'strae', label: 'Straße' } }))
    const e = await send({ type: 'user.signed_up', memberId: 'm_st', email: 'st@example.com', fields: { mk_street: 'Hauptstraße 1' } })
    expect((await settled(e.id as string)).status).toBe('succeeded')
    const field = h.kit.account(KEY).customFields.find((f) => f.label === 'Straße')!
    expect(subscriber('st@example.com')?.fields).toMatchObject({ [field.key]: 'Hauptstraße 1' })
    const saved = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    expect(saved.fields.find((f: { source: string }) => f.source === 'mk_street').kit_field).toEqual({ key: field.key, label: 'Straße' })
  })

  it('fills a tag placeholder with at most 100 characters of the value, control characters removed', async () => {
    await h.connect()
    await putMappings((doc) => doc.events['user.signed_up'].add_tags.push({ name: 'Country: {{ member.fields.mk_country }}' }))
    const value = `Ice\u0001land\n${'x'.repeat(300)}`
    const e = await send({ type: 'user.signed_up', memberId: 'm_ph', email: 'ph@example.com', fields: { mk_country: value } })
    expect((await settled(e.id as string)).status).toBe('succeeded')
    const tag = tagNames('ph@example.com').find((name) => name?.startsWith('Country: '))
    expect(tag).toBe(`Country: Iceland${'x'.repeat(93)}`)
  })
})

describe('default field mappings filled from the event', () => {
  it('writes mk_subscription_plan from a started subscription and mk_access_level from a granted level, unless the member carries them', async () => {
    await h.connect()
    await sendSettled({ type: 'user.signed_up', memberId: 'm_df', email: 'df@example.com' })
    await sendSettled({
      type: 'subscription.started',
      memberId: 'm_df',
      email: 'df@example.com',
      subscription: { id: 's_df', plan: 'team', status: 'active' },
    })
    await sendSettled({ type: 'access.granted', memberId: 'm_df', email: 'df@example.com', access: { level: 'gold' } })
    expect(subscriber('df@example.com')?.fields).toMatchObject({ subscription_plan: 'team', access_level: 'gold' })
    // A revocation or cancellation names what the member no longer has: it writes nothing.
    await sendSettled({ type: 'access.revoked', memberId: 'm_df', email: 'df@example.com', access: { level: 'gold' } })
    await sendSettled({
      type: 'subscription.canceled',
      memberId: 'm_df',
      email: 'df@example.com',
      subscription: { id: 's_df', plan: 'team', status: 'canceled' },
    })
    expect(subscriber('df@example.com')?.fields).toMatchObject({ subscription_plan: 'team', access_level: 'gold' })

    // The member's own fields come first.
    const own = await send({
      type: 'access.granted',
      memberId: 'm_df',
      email: 'df@example.com',
      access: { level: 'platinum' },
      fields: { mk_access_level: 'Platinum (lifetime)' },
    })
    expect((await settled(own.id as string)).status).toBe('succeeded')
    expect(subscriber('df@example.com')?.fields).toMatchObject({ access_level: 'Platinum (lifetime)' })
  })
})

describe('order, duplicates and staleness', () => {
  it('applies a duplicate only once', async () => {
    await h.connect()
    const event = makeEvent({ type: 'user.signed_up', memberId: 'm_dup', email: 'dup@example.com' })
    expect((await h.post(event)).statusCode).toBe(202)
    expect((await h.post(event)).statusCode).toBe(200)
    await settled(event.id as string)
    expect(h.app.sqlite.prepare('SELECT count(*) AS n FROM deliveries').get()).toEqual({ n: 1 })
  })

  it('a late, older profile never writes back an older name, email or member field', async () => {
    await h.connect()
    const t0 = Date.now() - 60_000
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const m = { memberId: 'm_pf' }
    await sendSettled({
      ...m,
      type: 'user.signed_up',
      email: 'pf@example.com',
      firstName: 'Pat',
      fields: { mk_subscription_plan: 'free' },
      time: at(0),
    })
    await sendSettled({
      ...m,
      type: 'user.updated',
      email: 'pf-new@example.com',
      firstName: 'Patricia',
      fields: { mk_subscription_plan: 'pro' },
      time: at(3000),
    })

    const lateUpdate = await send({
      ...m,
      type: 'user.updated',
      email: 'pf@example.com',
      firstName: 'Pat',
      fields: { mk_subscription_plan: 'basic' },
      time: at(1000),
    })
    const d = await settled(lateUpdate.id as string)
    expect(d.status).toBe('skipped')
    expect(d.reason).toBe('stale_profile')

    // A late grant still applies its tag and its level, but not the member's older fields.
    const lateGrant = await send({
      ...m,
      type: 'access.granted',
      email: 'pf@example.com',
      firstName: 'Pat',
      access: { level: 'gold' },
      fields: { mk_subscription_plan: 'basic' },
      time: at(2000),
    })
    expect((await settled(lateGrant.id as string)).status).toBe('succeeded')
    expect(h.kit.account(KEY).subscribers).toHaveLength(1)
    expect(subscriber('pf-new@example.com')).toMatchObject({
      first_name: 'Patricia',
      fields: { subscription_plan: 'pro', access_level: 'gold' },
    })
    expect(tagNames('pf-new@example.com')).toEqual(['Access: gold', 'New Member'])
  })

  it('a late, older event still writes the member fields no newer event wrote', async () => {
    await h.connect()
    const t0 = Date.now() - 60_000
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const m = { memberId: 'm_late', email: 'late@example.com' }
    // The grant (carrying no member fields) arrives and is applied before the older sign-up.
    await sendSettled({ ...m, type: 'access.granted', access: { level: 'gold' }, time: at(2000) })
    const signUp = await send({
      ...m,
      type: 'user.signed_up',
      firstName: 'Lee',
      fields: { mk_subscription_plan: 'pro', mk_access_level: 'bronze' },
      time: at(0),
    })
    const d = await settled(signUp.id as string)
    expect(d.status).toBe('succeeded')
    expect(d.last_error).toContain('wrote no name or email, and none of the member fields the newer one had written')
    // The plan lands; the level the newer grant wrote stays.
    expect(subscriber('late@example.com')?.fields).toMatchObject({ subscription_plan: 'pro', access_level: 'gold' })
  })

  it('a late, older subscription event never undoes a newer one', async () => {
    await h.connect()
    const t0 = Date.now() - 60_000
    const newer = await send({
      type: 'subscription.started',
      memberId: 'm_h',
      email: 'h@example.com',
      subscription: { id: 's_h', plan: 'pro' },
      time: new Date(t0 + 2000).toISOString(),
    })
    await settled(newer.id as string)
    const older = await send({
      type: 'subscription.canceled',
      memberId: 'm_h',
      email: 'h@example.com',
      subscription: { id: 's_h', plan: 'pro' },
      time: new Date(t0).toISOString(),
    })
    const d = await settled(older.id as string)
    expect(d.status).toBe('skipped')
    expect(d.reason).toBe('stale_event')
    expect(d.last_error).toContain(newer.id as string)
    expect(d.last_error).toContain('s_h')
    expect(tagNames('h@example.com')).toEqual(['Active Member'])
  })

  it('a late grant never undoes a newer revoke of the same access level', async () => {
    await h.connect()
    const t0 = Date.now() - 60_000
    const m = { memberId: 'm_acc', email: 'acc@example.com', access: { level: 'gold' } }
    await sendSettled({ ...m, type: 'access.revoked', time: new Date(t0 + 5000).toISOString() })
    const late = await send({ ...m, type: 'access.granted', time: new Date(t0).toISOString() })
    const d = await settled(late.id as string)
    expect(d).toMatchObject({ status: 'skipped', last_error: expect.stringMatching(/access level "gold"/) })
    expect(subscriber('acc@example.com')).toBeUndefined()
  })

  it("applies one member's queued events in time order, whatever the arrival order", async () => {
    await h.connect()
    const t0 = Date.now() - 60_000
    const canceled = makeEvent({
      type: 'subscription.canceled',
      memberId: 'm_i',
      email: 'i@example.com',
      subscription: { id: 's_i1' },
      time: new Date(t0 + 1000).toISOString(),
    })
    const started = makeEvent({
      type: 'subscription.started',
      memberId: 'm_i',
      email: 'i@example.com',
      subscription: { id: 's_i1' },
      time: new Date(t0).toISOString(),
    })
    await h.app.pipeline.consumer.stop()
    await h.post(canceled)
    await h.post(started)
    h.app.pipeline.consumer.start()
    await settled(canceled.id as string)
    await settled(started.id as string)
    expect(tagNames('i@example.com')).toEqual(['Cancelled'])
    const order = h.app.sqlite.prepare(`SELECT event_id FROM deliveries WHERE member_id = 'm_i' ORDER BY updated_at`).all() as {
      event_id: string
    }[]
    expect(order.map((o) => o.event_id)).toEqual([started.id, canceled.id])
  })
})

describe('failures', () => {
  it('retries Kit 5xx with backoff until it works', async () => {
    await h.connect()
    h.kit.injectNext(4, { status: 503, body: 'Service Unavailable', contentType: 'text/plain' })
    const e = await send({ type: 'user.signed_up', memberId: 'm_j', email: 'j@example.com' })
    const d = await settled(e.id as string)
    expect(d.status).toBe('succeeded')
    expect(d.attempts).toBeGreaterThanOrEqual(2)
    expect(tagNames('j@example.com')).toEqual(['New Member'])
  })

  it('retries at once what was backing off from an outage as soon as Kit answers again', async () => {
    await h.close()
    h = await PipelineHarness.start({ pipeline: { retry: { baseMs: 60_000, maxMs: 60_000, rateLimitWaitMs: 300 } } })
    await h.connect()
    h.kit.injectNext(3, 'network')
    const early = await send({ type: 'user.signed_up', memberId: 'm_out1', email: 'out1@example.com' })
    await waitFor(() => deliveryOf(early.id as string)?.status === 'retrying', { what: 'a delivery backing off' })
    const later = await send({ type: 'user.signed_up', memberId: 'm_out2', email: 'out2@example.com' })
    expect((await settled(later.id as string)).status).toBe('succeeded')
    const d = await settled(early.id as string)
    expect(d).toMatchObject({ status: 'succeeded', attempts: 2 })
    expect(tagNames('out1@example.com')).toEqual(['New Member'])
  })

  it('holds deliveries on a 401, marks the connection invalid, and resumes when a working key is saved', async () => {
    await h.connect()
    h.kit.revokeKey(KEY)
    const e = await send({ type: 'user.signed_up', memberId: 'm_k', email: 'k@example.com' })
    await waitFor(() => deliveryOf(e.id as string)?.reason === 'key_rejected', { what: 'held delivery' })
    const listed = (await h.app.inject({ method: 'GET', url: '/api/v1/deliveries', headers: asA })).json().items[0]
    expect(listed).toMatchObject({ status: 'pending', last_error: expect.stringMatching(/Connect Kit again under Connection/) })
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json().status).toBe('invalid')
    const kitCallsWhileHeld = h.kit.requests.length
    const second = await send({ type: 'user.updated', memberId: 'm_k', email: 'k@example.com' })
    // Another member's event sent after it: once that one is held, the consumer has had its turn
    // at the second event too (which waits behind the member's held one, or is held itself).
    const other = await send({ type: 'user.signed_up', memberId: 'm_k2', email: 'k2@example.com' })
    await waitFor(() => deliveryOf(other.id as string)?.status === 'held', { what: "the other member's delivery held" })
    expect(['pending', 'held']).toContain(deliveryOf(second.id as string)?.status)
    expect(h.kit.requests.length).toBe(kitCallsWhileHeld)
    h.kit.restoreKey(KEY)
    await h.connect()
    expect((await settled(e.id as string)).status).toBe('succeeded')
    expect((await settled(second.id as string)).status).toBe('succeeded')
    expect((await settled(other.id as string)).status).toBe('succeeded')
    expect(tagNames('k@example.com')).toEqual(['New Member'])
    expect(tagNames('k2@example.com')).toEqual(['New Member'])
  })

  it('a failed delivery can be retried through the API', async () => {
    await mapSignUpToPausedSequence()
    const e = await send({ type: 'user.signed_up', memberId: 'm_l', email: 'l@example.com' })
    const failed = await settled(e.id as string)
    expect(failed.status).toBe('failed')
    h.kit.account(KEY).sequences[0]!.active = true
    expect((await h.app.inject({ method: 'POST', url: `/api/v1/deliveries/${failed.id}/retry`, headers: asB })).statusCode).toBe(404)
    const retry = await h.app.inject({ method: 'POST', url: `/api/v1/deliveries/${failed.id}/retry`, headers: asA })
    expect(retry.statusCode).toBe(202)
    await waitFor(() => deliveryOf(e.id as string)?.status === 'succeeded', { what: 'retried delivery' })
    const again = await h.app.inject({ method: 'POST', url: `/api/v1/deliveries/${failed.id}/retry`, headers: asA })
    expect(again.statusCode).toBe(409)
  })

  it('stays within the budget under a burst: at most a couple of 429s', async () => {
    await h.close()
    await setup({ rateLimit: { limit: 20, windowMs: 1000 } }, { kitRateLimit: 20, kitRateWindowMs: 1000 })
    await h.connect()
    const events = []
    for (let i = 0; i < 40; i++)
      events.push(await send({ type: 'user.signed_up', memberId: `m_burst_${i}`, email: `burst${i}@example.com` }))
    for (const e of events) expect((await settled(e.id as string)).status).toBe('succeeded')
    expect(h.kit.requests.filter((r) => r.status === 429).length).toBeLessThanOrEqual(2)
    expect(h.kit.account(KEY).subscribers).toHaveLength(40)
    const calls = (method: string, path: string) =>
      h.kit.requests.filter((r) => r.method === method && r.path === path && r.status < 300).length
    expect(calls('GET', '/v4/tags')).toBe(1)
    expect(calls('POST', '/v4/tags')).toBe(1)
  }, 30_000)

  it("one community's backlog does not stall another's", async () => {
    await h.close()
    await setup({ rateLimit: { limit: 10, windowMs: 1000 } }, { kitRateLimit: 10, kitRateWindowMs: 1000 })
    await h.connect(asA, KEY)
    await h.connect(asB, KEY_B)
    for (let i = 0; i < 30; i++) await send({ type: 'user.signed_up', memberId: `m_a${i}`, email: `a${i}@example.com` })
    const b = await send({ type: 'user.signed_up', communityId: 'c_bravo', memberId: 'm_b0', email: 'b0@example.com' })
    await settled(b.id as string)
    const pendingA = (
      h.app.sqlite.prepare(`SELECT count(*) AS n FROM deliveries WHERE community_id = 'c_alpha' AND status = 'pending'`).get() as {
        n: number
      }
    ).n
    expect(pendingA).toBeGreaterThan(10)
    expect(tagNames('b0@example.com', KEY_B)).toEqual(['New Member'])
  }, 30_000)
})

describe('Kit economy', () => {
  it('spends at most 2 Kit requests per event on the lifecycle mix, beside the field writes it asks for', async () => {
    await h.close()
    await setup({ rateLimit: { limit: 1000, windowMs: 60_000 } }, { kitRateLimit: 1000, kitRateWindowMs: 60_000 })
    await h.connect()
    const members = 20
    const ids: string[] = []
    const t0 = Date.now() - 60_000
    for (let i = 0; i < members; i++) {
      const m = { memberId: `m_mix${i}`, email: `mix${i}@example.com` }
      const sub = { id: `s_mix${i}`, plan: 'pro', status: 'active' }
      const at = (n: number) => new Date(t0 + i * 10 + n).toISOString()
      ids.push(
        (await send({ ...m, type: 'user.signed_up', firstName: 'Mix', fields: { mk_subscription_plan: 'free' }, time: at(0) }))
          .id as string,
      )
      ids.push((await send({ ...m, type: 'subscription.started', subscription: sub, time: at(1) })).id as string)
      ids.push((await send({ ...m, type: 'access.granted', access: { level: 'gold' }, time: at(2) })).id as string)
      ids.push(
        (await send({ ...m, type: 'subscription.canceled', subscription: { ...sub, status: 'canceled' }, time: at(3) })).id as string,
      )
    }
    for (const id of ids) expect((await settled(id)).status).toBe('succeeded')
    // Two writes per member change a field: the plan (free → pro) and the granted access level.
    const fieldWrites = h.kit.requests.filter((r) => r.method === 'PUT').length
    expect(fieldWrites).toBe(2 * members)
    const perEvent = (kitCalls() - fieldWrites) / ids.length
    const recorded = (h.app.sqlite.prepare('SELECT sum(kit_requests) AS n FROM deliveries').get() as { n: number }).n
    expect(recorded).toBe(kitCalls())
    expect(perEvent).toBeLessThanOrEqual(2)
    const metrics = (await h.app.inject('/metrics')).body
    expect(metrics).toMatch(/kit_events_processed_total\{status="succeeded"\} 80/)
    expect(metrics).toMatch(/kit_api_requests_total\{status="201"\} \d+/)
    expect(metrics).toMatch(/kit_delivery_latency_seconds_count 80/)
    for (let i = 0; i < members; i++) expect(tagNames(`mix${i}@example.com`)).toEqual(['Access: gold', 'Cancelled', 'New Member'])
  }, 30_000)
})

describe('deliveries API', () => {
  it('lists newest first, filters by status and member, pages with a cursor, and is scoped by community', async () => {
    await h.connect()
    for (let i = 0; i < 5; i++) await sendSettled({ type: 'user.signed_up', memberId: `m_p${i}`, email: `page${i}@example.com` })
    await sendSettled({ type: 'user.signed_up', communityId: 'c_bravo', memberId: 'm_other', email: 'other@example.com' })

    const first = (await h.app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=2', headers: asA })).json()
    expect(first.items.map((d: { member_email: string }) => d.member_email)).toEqual(['page4@example.com', 'page3@example.com'])
    expect(first.items[0]).toMatchObject({
      status: 'succeeded',
      event_type: 'user.signed_up',
      attempts: 1,
      last_error: null,
      kit_requests: expect.any(Number),
    })
    const second = (
      await h.app.inject({ method: 'GET', url: `/api/v1/deliveries?limit=2&cursor=${first.next_cursor}`, headers: asA })
    ).json()
    expect(second.items.map((d: { member_email: string }) => d.member_email)).toEqual(['page2@example.com', 'page1@example.com'])
    const member = (await h.app.inject({ method: 'GET', url: '/api/v1/deliveries?member=PAGE3', headers: asA })).json()
    expect(member.items).toHaveLength(1)
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/deliveries?status=failed', headers: asA })).json().items).toEqual([])
    const bravo = (await h.app.inject({ method: 'GET', url: '/api/v1/deliveries', headers: asB })).json()
    expect(bravo.items.map((d: { member_email: string }) => d.member_email)).toEqual(['other@example.com'])
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/deliveries?status=lost', headers: asA })).statusCode).toBe(400)
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/deliveries?cursor=bogus', headers: asA })).statusCode).toBe(400)
  })
})
