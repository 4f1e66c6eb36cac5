import { afterEach, describe, expect, it } from 'vitest'
import { reasonWords } from '../server/core/reasons.ts'
import { RETRY_MANY_MAX } from '#shared/api.ts'
import { storeDelivery } from './helpers/deliveries.ts'
import { waitFor } from './helpers/events.ts'
import { asA, asB, KEY, KEY_B, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness

afterEach(async () => {
  await h.close()
})

const retryOne = (id: string, headers = asA) => h.app.inject({ method: 'POST', url: `/api/v1/deliveries/${id}/retry`, headers })
const retryMany = (payload: unknown, headers = asA) =>
  h.app.inject({ method: 'POST', url: '/api/v1/deliveries/retry', headers, payload: payload as object })
const replayDisconnected = (headers = asA) => retryMany({ status: 'skipped', reason: 'not_connected' }, headers)
const replayable = async (headers = asA) => {
  const res = await h.app.inject({ method: 'GET', url: '/api/v1/deliveries/replayable', headers })
  expect(res.statusCode).toBe(200)
  return res.json()
}

describe('retrying skipped deliveries', () => {
  it('sends a delivery skipped while no Kit account was connected once it is retried', async () => {
    h = await PipelineHarness.start()
    const eventId = await h.send({ type: 'user.signed_up', memberId: 'm_r1', email: 'r1@example.com' })
    const skipped = h.delivery(eventId)!
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'not_connected' })
    await h.connect()

    expect((await retryOne(skipped.id, asB)).statusCode).toBe(404)
    expect((await retryOne(skipped.id)).statusCode).toBe(202)
    expect((await h.settled(eventId, { statuses: ['succeeded'] })).status).toBe('succeeded')
    expect(h.tagNames('r1@example.com')).toEqual(['New Member'])
  })

  it('refuses to retry a delivery that is neither failed nor skipped, naming what can be retried', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const eventId = await h.send({ type: 'user.signed_up', memberId: 'm_r2', email: 'r2@example.com' })
    const done = await h.settled(eventId)
    expect(done.status).toBe('succeeded')
    const res = await retryOne(done.id)
    expect(res.statusCode).toBe(409)
    expect(res.json()).toEqual({
      error: { code: 'not_retryable', message: 'Only failed or skipped deliveries can be retried; this one is succeeded.' },
    })
  })

  it('a stale skip stays skipped when retried, with the same reason', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const t0 = Date.now() - 60_000
    const sub = { memberId: 'm_st', email: 'st@example.com', subscription: { id: 's_st', plan: 'pro' } }
    await h.settled(await h.send({ ...sub, type: 'subscription.started', time: new Date(t0 + 2000).toISOString() }))
    const olderId = await h.send({ ...sub, type: 'subscription.canceled', time: new Date(t0).toISOString() })
    const stale = await h.settled(olderId)
    expect(stale.status).toBe('skipped')
    expect(stale.reason).toBe('stale_event')

    expect((await retryOne(stale.id)).statusCode).toBe(202)
    const again = await waitFor(
      () => {
        const d = h.delivery(olderId)!
        return d.status === 'skipped' && d.attempts === stale.attempts && d.updated_at !== stale.updated_at ? d : undefined
      },
      { what: 'the retried stale delivery' },
    )
    expect(again.last_error).toBe(stale.last_error)
    expect(h.tagNames('st@example.com')).toEqual(['Active Member'])
  })
})

describe('sending what was recorded while no Kit account was connected', () => {
  it('re-queues every such delivery of the community in one call, oldest first, and the newest event wins', async () => {
    h = await PipelineHarness.start()
    const t0 = Date.now() - 60_000
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const a = { memberId: 'm_a', email: 'a@example.com' }
    const sub = { id: 's_a', plan: 'pro', status: 'active' }
    // Sent out of order on purpose: replay follows event time, not arrival.
    const recorded = [
      await h.send({ ...a, type: 'subscription.canceled', subscription: { ...sub, status: 'canceled' }, time: at(3000) }),
      await h.send({ ...a, type: 'user.signed_up', firstName: 'Ann', time: at(0) }),
      await h.send({ ...a, type: 'subscription.started', subscription: sub, time: at(1000) }),
      await h.send({
        type: 'user.signed_up',
        memberId: 'm_b',
        email: 'b@example.com',
        fields: { mk_subscription_plan: 'free' },
        time: at(500),
      }),
    ]
    const bravo = await h.send({
      type: 'user.signed_up',
      communityId: 'c_bravo',
      memberId: 'm_other',
      email: 'other@example.com',
      time: at(0),
    })
    for (const id of recorded) expect(h.delivery(id)?.status).toBe('skipped')

    await h.connect()
    // Skipped for another reason: not part of the replay.
    const nothingMappedId = await h.send({ type: 'user.deleted', memberId: 'm_c', email: 'c@example.com', time: at(100) })
    const nothingMapped = await h.settled(nothingMappedId)
    expect(nothingMapped).toMatchObject({
      status: 'skipped',
      reason: 'empty_mapping',
      last_error: reasonWords('empty_mapping', { eventType: 'user.deleted' }),
    })

    const res = await replayDisconnected()
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ queued: 4, remaining: 0 })
    for (const id of recorded) expect((await h.settled(id)).status).toBe('succeeded')
    expect(h.tagNames('a@example.com')).toEqual(['Cancelled', 'New Member'])
    expect(h.subscriber('a@example.com')?.first_name).toBe('Ann')
    expect(h.subscriber('b@example.com')?.fields).toMatchObject({ subscription_plan: 'free' })
    const applied = h.app.sqlite.prepare(`SELECT event_id FROM deliveries WHERE member_id = 'm_a' ORDER BY updated_at, seq`).all() as {
      event_id: string
    }[]
    expect(applied.map((d) => d.event_id)).toEqual([recorded[1], recorded[2], recorded[0]])
    expect(h.delivery(nothingMappedId)).toMatchObject({
      status: 'skipped',
      attempts: nothingMapped.attempts,
      updated_at: nothingMapped.updated_at,
    })

    // Community B's recorded events were not touched, and B cannot replay without its own connection.
    expect(h.delivery(bravo)).toMatchObject({ status: 'skipped', reason: 'not_connected' })
    const refused = await replayDisconnected(asB)
    expect(refused.statusCode).toBe(409)
    expect(refused.json().error.code).toBe('not_connected')
    expect(h.kit.account(KEY_B).subscribers).toHaveLength(0)
    // A second call for A finds nothing left.
    expect((await replayDisconnected()).json()).toEqual({ queued: 0, remaining: 0 })
  })

  it("is scoped to the community: B replays only its own recorded events, never A's", async () => {
    h = await PipelineHarness.start()
    const mine = await h.send({ type: 'user.signed_up', memberId: 'm_mine', email: 'mine@example.com' })
    const theirs = await h.send({ type: 'user.signed_up', communityId: 'c_bravo', memberId: 'm_theirs', email: 'theirs@example.com' })
    await h.connect(asA, KEY)
    await h.connect(asB, KEY_B)
    expect((await replayDisconnected(asB)).json()).toEqual({ queued: 1, remaining: 0 })
    expect((await h.settled(theirs, { statuses: ['succeeded'] })).status).toBe('succeeded')
    expect(h.delivery(mine)?.status).toBe('skipped')
    expect(h.kit.account(KEY).subscribers).toHaveLength(0)
    expect(h.tagNames('theirs@example.com', KEY_B)).toEqual(['New Member'])
    expect((await retryOne(h.delivery(mine)!.id, asB)).statusCode).toBe(404)
  })

  it('never lets a replayed older event undo a newer one applied meanwhile, nor write back an older profile', async () => {
    h = await PipelineHarness.start()
    const t0 = Date.now() - 60_000
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const m = { memberId: 'm_old', email: 'old@example.com' }
    const sub = { id: 's_old', plan: 'pro', status: 'active' }
    const olderStart = await h.send({ ...m, type: 'subscription.started', subscription: sub, time: at(0) })
    const olderProfile = await h.send({ ...m, type: 'user.updated', firstName: 'Before', time: at(500) })

    await h.connect()
    await h.settled(await h.send({ ...m, type: 'user.signed_up', firstName: 'After', time: at(1000) }))
    await h.settled(await h.send({ ...m, type: 'subscription.canceled', subscription: { ...sub, status: 'canceled' }, time: at(2000) }))

    expect((await replayDisconnected()).json()).toEqual({ queued: 2, remaining: 0 })
    const start = await h.settled(olderStart)
    expect(start.status).toBe('skipped')
    expect(start.reason).toBe('stale_event')
    expect(start.last_error).toContain('s_old')
    const profile = await h.settled(olderProfile)
    expect(profile.status).toBe('skipped')
    expect(profile.reason).toBe('stale_profile')
    expect(h.tagNames('old@example.com')).toEqual(['Cancelled', 'New Member'])
    expect(h.subscriber('old@example.com')?.first_name).toBe('After')
  })

  it(`re-queues at most ${RETRY_MANY_MAX} per call and says how many are left`, async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.app.pipeline.consumer.stop()
    const now = Date.now()
    h.app.sqlite.transaction(() => {
      for (let i = 0; i < RETRY_MANY_MAX + 3; i++) {
        storeDelivery(h.app.sqlite, {
          eventId: `evt_bulk_${i}`,
          eventTime: now + i,
          receivedAt: now,
          status: 'skipped',
          lastError: reasonWords('not_connected'),
          reason: 'not_connected',
        })
      }
    })()
    expect((await replayDisconnected()).json()).toEqual({ queued: RETRY_MANY_MAX, remaining: 3 })
    const pending = h.app.sqlite
      .prepare(`SELECT event_id FROM deliveries WHERE status = 'pending' ORDER BY event_time DESC LIMIT 1`)
      .get() as { event_id: string }
    expect(pending.event_id).toBe(`evt_bulk_${RETRY_MANY_MAX - 1}`)
    expect((await replayDisconnected()).json()).toEqual({ queued: 3, remaining: 0 })
  })

  it('asks for a reason with status skipped, and refuses one with status failed', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const noReason = await retryMany({ status: 'skipped' })
    expect(noReason.statusCode).toBe(400)
    expect(noReason.json().error.message).toMatch(/body\.reason is required with status "skipped": use "not_connected"/)
    expect((await retryMany({ status: 'failed', reason: 'not_connected' })).statusCode).toBe(400)
    expect((await retryMany({ status: 'succeeded' })).statusCode).toBe(400)
    expect((await retryMany({ status: 'failed' })).json()).toEqual({ queued: 0, remaining: 0 })
  })

  it('retries every failed delivery of the community in one call', async () => {
    h = await PipelineHarness.start()
    h.kit.seed(KEY, { sequences: [{ name: 'Paused', active: false }] })
    await h.connect()
    const sequence = h.kit.account(KEY).sequences[0]!
    await h.putMappings((doc) => {
      doc.events['user.signed_up'].add_to_sequences = [{ id: sequence.id, name: sequence.name }]
    })
    const ids = [
      await h.send({ type: 'user.signed_up', memberId: 'm_f1', email: 'f1@example.com' }),
      await h.send({ type: 'user.signed_up', memberId: 'm_f2', email: 'f2@example.com' }),
    ]
    for (const id of ids) expect((await h.settled(id)).status).toBe('failed')
    sequence.active = true
    expect((await retryMany({ status: 'failed' }, asB)).json()).toEqual({ queued: 0, remaining: 0 })
    expect((await retryMany({ status: 'failed' })).json()).toEqual({ queued: 2, remaining: 0 })
    for (const id of ids) expect((await h.settled(id, { statuses: ['succeeded'] })).status).toBe('succeeded')
    expect(h.kit.account(KEY).sequences[0]!.subscribers).toHaveLength(2)
  })
})

describe('the retry routes in the API description', () => {
  it('carry an operation id, a summary and a description for every answer', async () => {
    h = await PipelineHarness.start()
    const doc = (await h.app.inject('/docs/openapi.json')).json()
    const many = doc.paths['/api/v1/deliveries/retry'].post
    expect(many).toMatchObject({ operationId: 'retryDeliveries', summary: expect.any(String) })
    expect(many.responses['202'].description).toMatch(/Queued/)
    expect(many.responses['409'].description).toMatch(/not_connected/)
    const one = doc.paths['/api/v1/deliveries/{id}/retry'].post
    expect(one).toMatchObject({ operationId: 'retryDelivery', summary: 'Send one failed or skipped delivery again' })
    expect(one.responses['409'].description).toMatch(/failed or skipped/)
  })
})

describe('counting what was recorded while no Kit account was connected', () => {
  it('counts the deliveries, their members and each event type, before and after connecting, and none once they are sent', async () => {
    h = await PipelineHarness.start()
    const t0 = Date.now() - 60_000
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const recorded = [
      await h.send({ type: 'user.signed_up', memberId: 'm_c1', email: 'c1@example.com', time: at(0) }),
      await h.send({ type: 'user.signed_up', memberId: 'm_c2', email: 'c2@example.com', time: at(10) }),
      await h.send({
        type: 'subscription.started',
        memberId: 'm_c1',
        email: 'c1@example.com',
        subscription: { id: 's_c1', plan: 'pro', status: 'active' },
        time: at(20),
      }),
    ]
    const expected = {
      count: 3,
      members: 2,
      event_types: [
        { event_type: 'user.signed_up', count: 2 },
        { event_type: 'subscription.started', count: 1 },
      ],
    }
    expect(await replayable()).toEqual(expected)

    await h.connect()
    // Skipped for another reason: not something a replay sends.
    await h.settled(await h.send({ type: 'user.deleted', memberId: 'm_c3', email: 'c3@example.com', time: at(30) }))
    expect(await replayable()).toEqual(expected)

    expect((await replayDisconnected()).json()).toEqual({ queued: 3, remaining: 0 })
    expect(await replayable()).toEqual({ count: 0, members: 0, event_types: [] })
    for (const id of recorded) expect((await h.settled(id)).status).toBe('succeeded')
    expect(await replayable()).toEqual({ count: 0, members: 0, event_types: [] })
  })

  it("counts only the community's own: B sees none of A's recorded events", async () => {
    h = await PipelineHarness.start()
    await h.send({ type: 'user.signed_up', memberId: 'm_a1', email: 'a1@example.com' })
    await h.send({ type: 'user.updated', memberId: 'm_a1', email: 'a1@example.com' })
    await h.send({ type: 'user.signed_up', communityId: 'c_bravo', memberId: 'm_b1', email: 'b1@example.com' })
    expect(await replayable()).toMatchObject({ count: 2, members: 1 })
    expect(await replayable(asB)).toEqual({ count: 1, members: 1, event_types: [{ event_type: 'user.signed_up', count: 1 }] })
    const anonymous = await h.app.inject({ method: 'GET', url: '/api/v1/deliveries/replayable' })
    expect(anonymous.statusCode).toBe(401)
  })
})
