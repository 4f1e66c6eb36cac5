import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Delivery, DeliveryStep } from '#shared/api.ts'
import { asA, asB, KEY, PipelineHarness } from './helpers/pipeline.ts'
import type { EventInput } from './helpers/events.ts'

let h: PipelineHarness

beforeEach(async () => {
  h = await PipelineHarness.start({ connected: true })
})
afterEach(async () => {
  await h.close()
})

const send = (input: EventInput) => h.send(input)

const list = async (query: string, headers = asA): Promise<Delivery[]> => {
  const res = await h.app.inject({ method: 'GET', url: `/api/v1/deliveries?${query}`, headers })
  expect(res.statusCode).toBe(200)
  return res.json().items
}

/** The delivery of an event once it is done, as the API shows it. */
async function settled(eventId: string): Promise<Delivery> {
  await h.settled(eventId)
  return (await list('limit=200')).find((d) => d.event_id === eventId)!
}

const brief = (steps: DeliveryStep[]) => steps.map((s) => [s.action, s.target])

describe('each delivery says what it did in Kit', () => {
  it('a sign-up records the subscriber created, the fields written and the tag added, by name', async () => {
    const id = await send({ type: 'user.signed_up', memberId: 'm_ada', email: 'ada@example.com', fields: { mk_subscription_plan: 'free' } })
    const delivery = await settled(id)
    expect(delivery.status).toBe('succeeded')
    expect(brief(delivery.steps)).toEqual([
      ['subscriber.created', 'ada@example.com'],
      ['fields.written', 'Subscription plan'],
      ['tag.added', 'New Member'],
    ])
  })

  it('a second, unchanged event says the subscriber was unchanged; a changed field says updated', async () => {
    await settled(await send({ type: 'user.signed_up', memberId: 'm_b', email: 'b@example.com', fields: { mk_subscription_plan: 'free' } }))
    const same = await settled(
      await send({ type: 'user.updated', memberId: 'm_b', email: 'b@example.com', fields: { mk_subscription_plan: 'free' } }),
    )
    expect(brief(same.steps)[0]).toEqual(['subscriber.unchanged', 'b@example.com'])
    const changed = await settled(
      await send({ type: 'user.updated', memberId: 'm_b', email: 'b@example.com', fields: { mk_subscription_plan: 'pro' } }),
    )
    expect(brief(changed.steps).slice(0, 2)).toEqual([
      ['subscriber.updated', 'b@example.com'],
      ['fields.written', 'Subscription plan'],
    ])
  })

  it('a removal of a tag the member has names the tag; a skip says why', async () => {
    await settled(await send({ type: 'access.granted', memberId: 'm_c', email: 'c@example.com', access: { level: 'gold' } }))
    const revoked = await settled(
      await send({ type: 'access.revoked', memberId: 'm_c', email: 'c@example.com', access: { level: 'gold' } }),
    )
    expect(brief(revoked.steps)).toContainEqual(['tag.removed', 'Access: gold'])

    const stranger = await settled(
      await send({ type: 'access.revoked', memberId: 'm_x', email: 'nobody@example.com', access: { level: 'gold' } }),
    )
    expect(stranger.status).toBe('skipped')
    expect(stranger.reason).toBe('not_in_kit')
    expect(stranger.last_error).toContain('nobody@example.com')
    expect(stranger.steps).toEqual([{ action: 'skipped', target: null, detail: stranger.last_error }])
  })

  it('a snapshot older than a live event already applied is skipped with the reason as its one step', async () => {
    const live = await settled(await send({ type: 'user.updated', memberId: 'm_snap', email: 'snap@example.com', firstName: 'Live' }))
    expect(live.status).toBe('succeeded')
    const older = new Date(Date.now() - 60_000).toISOString()
    const snapshot = await settled(
      await send({ type: 'member.snapshot', memberId: 'm_snap', email: 'snap@example.com', firstName: 'Old', time: older }),
    )
    expect(snapshot.status).toBe('skipped')
    expect(snapshot.reason).toBe('stale_snapshot')
    expect(snapshot.last_error).toContain(live.event_id)
    expect(snapshot.steps).toEqual([{ action: 'skipped', target: null, detail: snapshot.last_error }])
    expect(h.kit.account(KEY).subscribers.find((s) => s.email_address === 'snap@example.com')?.first_name).toBe('Live')
  })

  it('an older event applied after a newer profile says in its steps that it wrote no profile', async () => {
    await settled(await send({ type: 'user.signed_up', memberId: 'm_old', email: 'old@example.com', firstName: 'New' }))
    const older = new Date(Date.now() - 60_000).toISOString()
    const granted = await settled(
      await send({ type: 'access.granted', memberId: 'm_old', email: 'old@example.com', access: { level: 'gold' }, time: older }),
    )
    expect(granted.status).toBe('succeeded')
    expect(granted.last_error).toContain("A newer event already set this member's profile")
    expect(granted.steps).toContainEqual({
      action: 'warning',
      target: null,
      detail: expect.stringContaining("A newer event already set this member's profile"),
    })
    expect(brief(granted.steps)).toContainEqual(['tag.added', 'Access: gold'])
  })

  it('a failed attempt ends with the failure in words', async () => {
    h.kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: ['Email address is invalid'] }), contentType: 'application/json' })
    const failed = await settled(await send({ type: 'user.signed_up', memberId: 'm_f', email: 'f@example.com' }))
    expect(failed.status).toBe('failed')
    expect(failed.steps.at(-1)).toMatchObject({ action: 'failed', detail: expect.stringContaining('Email address is invalid') })
  })
})

describe('Kit requests of a delivery', () => {
  it('count only requests Kit answered, not attempts that never reached it', async () => {
    const before = h.kit.requests.length
    h.kit.injectNext(2, 'network')
    const id = await send({ type: 'user.signed_up', memberId: 'm_net', email: 'net@example.com' })
    const delivery = await settled(id)
    expect(delivery.status).toBe('succeeded')
    const answered = h.kit.requests.slice(before).length
    expect(delivery.kit_requests).toBe(answered - 2)
  })
})

describe('one member’s story', () => {
  it('lists that member’s deliveries oldest first with order=oldest, paging forwards, only in the own community', async () => {
    const ids = []
    for (const type of ['user.signed_up', 'user.updated', 'user.updated'])
      ids.push(await send({ type, memberId: 'm_g', email: 'grace@example.com' }))
    await send({ type: 'user.signed_up', memberId: 'm_h', email: 'hopper@example.com' })
    for (const id of ids) await settled(id)

    const first = await h.app.inject({
      method: 'GET',
      url: '/api/v1/deliveries?member=grace@example.com&order=oldest&limit=2',
      headers: asA,
    })
    const page = first.json()
    expect(page.items.map((d: Delivery) => d.event_id)).toEqual(ids.slice(0, 2))
    const rest = await list(`member=grace@example.com&order=oldest&cursor=${page.next_cursor}`)
    expect(rest.map((d) => d.event_id)).toEqual(ids.slice(2))
    expect((await list('member=grace@example.com')).map((d) => d.event_id)).toEqual([...ids].reverse())
    expect(await list('member=grace@example.com&order=oldest', asB)).toEqual([])
  })
})

describe('retry', () => {
  it('answers with the delivery as it now stands, so the panel can update the row in place', async () => {
    h.kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: ['Email address is invalid'] }), contentType: 'application/json' })
    const failed = await settled(await send({ type: 'user.signed_up', memberId: 'm_r', email: 'r@example.com' }))
    const res = await h.app.inject({ method: 'POST', url: `/api/v1/deliveries/${failed.id}/retry`, headers: asA })
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ id: failed.id, status: 'pending', next_attempt_at: null })
    const other = await h.app.inject({ method: 'POST', url: `/api/v1/deliveries/${failed.id}/retry`, headers: asB })
    expect(other.statusCode).toBe(404)
  })
})
