/**
 * The community's consent setting end to end, against the Kit stand-in: in the consent-only mode a
 * new member who has not agreed costs Kit nothing, one who agreed is created, one the plugin
 * already holds in Kit stays in step, and a withdrawal unsubscribes in either mode. On several
 * instances sharing PostgreSQL, a choice saved on one holds on the others at once.
 */
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { makeEvent, postEvent, waitFor, type EventInput } from './helpers/events.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'

let h: PipelineHarness | undefined

afterEach(async () => {
  await h?.close()
  h = undefined
})

async function start(): Promise<PipelineHarness> {
  h = await PipelineHarness.start({ connected: true })
  return h
}

async function chooseConsent(harness: PipelineHarness, mode: 'all_members' | 'marketing_consent', app = harness.app) {
  const res = await app.inject({ method: 'PUT', url: '/api/v1/consent', headers: asA, payload: { mode } })
  expect(res.statusCode).toBe(200)
}

/** Sends the event, waits until its delivery settled, and answers it with the Kit requests it caused. */
async function deliver(harness: PipelineHarness, input: EventInput) {
  const before = harness.kit.requests.length
  const id = await harness.send(input)
  const delivery = await harness.settled(id)
  return { delivery, calls: harness.callsSince(before) }
}

const AGREED = { marketing: true, at: '2026-11-01T09:00:00Z' }
const WITHDRAWN = { marketing: false, at: '2026-11-02T09:00:00Z' }

describe('only members who agreed to marketing email', () => {
  it('sends zero Kit requests for a new member whose event carries no consent', async () => {
    const harness = await start()
    await chooseConsent(harness, 'marketing_consent')
    const { delivery, calls } = await deliver(harness, { type: 'user.signed_up', memberId: 'm_none', email: 'none@example.com' })
    expect(delivery).toMatchObject({ status: 'skipped', reason: 'no_consent', kit_requests: 0 })
    expect(calls).toEqual([])
    expect(harness.subscriber('none@example.com')).toBeUndefined()
  })

  it('sends zero Kit requests for a new member who said no', async () => {
    const harness = await start()
    await chooseConsent(harness, 'marketing_consent')
    const { delivery, calls } = await deliver(harness, {
      type: 'subscription.started',
      memberId: 'm_no',
      email: 'no@example.com',
      consent: WITHDRAWN,
    })
    expect(delivery).toMatchObject({ status: 'skipped', reason: 'no_consent', kit_requests: 0 })
    expect(calls).toEqual([])
    expect(harness.subscriber('no@example.com')).toBeUndefined()
  })

  it('creates a member who agreed, with their tags', async () => {
    const harness = await start()
    await chooseConsent(harness, 'marketing_consent')
    const { delivery } = await deliver(harness, { type: 'user.signed_up', memberId: 'm_yes', email: 'yes@example.com', consent: AGREED })
    expect(delivery.status).toBe('succeeded')
    expect(harness.subscriber('yes@example.com')).toMatchObject({ state: 'active' })
    expect(harness.tagNames('yes@example.com')).toEqual(['New Member'])
  })

  it('keeps writing tags for a member already in Kit whose later event carries no consent', async () => {
    const harness = await start()
    await deliver(harness, { type: 'user.signed_up', memberId: 'm_known', email: 'known@example.com' })
    await chooseConsent(harness, 'marketing_consent')
    const { delivery, calls } = await deliver(harness, { type: 'subscription.started', memberId: 'm_known', email: 'known@example.com' })
    expect(delivery.status).toBe('succeeded')
    expect(calls.length).toBeGreaterThan(0)
    expect(harness.tagNames('known@example.com')).toEqual(['Active Member', 'New Member'])
  })

  it('follows a change of the setting from the next delivery on, without a restart', async () => {
    const harness = await start()
    await chooseConsent(harness, 'marketing_consent')
    expect((await deliver(harness, { memberId: 'm_1', email: 'one@example.com' })).delivery.status).toBe('skipped')
    await chooseConsent(harness, 'all_members')
    expect((await deliver(harness, { memberId: 'm_2', email: 'two@example.com' })).delivery.status).toBe('succeeded')
    expect(harness.subscriber('two@example.com')).toBeDefined()
  })
})

describe.each(['all_members', 'marketing_consent'] as const)('a withdrawal with %s', (mode) => {
  it('unsubscribes the member in Kit', async () => {
    const harness = await start()
    await deliver(harness, { type: 'user.signed_up', memberId: 'm_w', email: 'w@example.com', consent: AGREED })
    await chooseConsent(harness, mode)
    const { delivery, calls } = await deliver(harness, {
      type: 'user.updated',
      memberId: 'm_w',
      email: 'w@example.com',
      consent: WITHDRAWN,
    })
    expect(delivery.status).toBe('succeeded')
    expect(calls).toContainEqual(expect.stringMatching(/^POST \/v4\/subscribers\/:id\/unsubscribe 2\d\d$/))
    expect(harness.subscriber('w@example.com')?.state).toBe('cancelled')
  })
})

const pgUp = await postgresAvailable()

describe.skipIf(!pgUp)('on several instances sharing PostgreSQL', () => {
  it('a choice saved on one instance holds on the other at once', async () => {
    const cluster = await PipelineHarness.start({ postgres: 'kitconsent', instances: 2, connected: true })
    h = cluster
    const [a, b] = cluster.apps as [FastifyInstance, FastifyInstance]
    const settle = async (app: FastifyInstance, input: EventInput) => {
      const event = makeEvent(input)
      expect((await postEvent(app, cluster.secret, event)).statusCode).toBe(202)
      return waitFor(
        async () => {
          const page = (await app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=100', headers: asA })).json() as {
            items: { event_id: string; status: string; kit_requests: number }[]
          }
          const d = page.items.find((item) => item.event_id === event.id)
          return d && ['succeeded', 'failed', 'skipped'].includes(d.status) ? d : undefined
        },
        { what: `delivery of ${String(event.id)}`, timeoutMs: 20_000 },
      )
    }
    expect((await settle(b, { memberId: 'm_before', email: 'before@example.com' })).status).toBe('succeeded')
    await chooseConsent(cluster, 'marketing_consent', a)
    expect((await b.inject({ method: 'GET', url: '/api/v1/consent', headers: asA })).json().mode).toBe('marketing_consent')
    // Either instance may take the delivery: both read the setting from the database.
    for (const app of [a, b]) {
      const member = `m_after_${cluster.apps.indexOf(app)}`
      expect(await settle(app, { memberId: member, email: `${member}@example.com` })).toMatchObject({ status: 'skipped', kit_requests: 0 })
    }
    expect(cluster.kit.account(KEY).subscribers.map((s) => s.email_address)).toEqual(['before@example.com'])
  })
})
