import { afterEach, describe, expect, it } from 'vitest'
import { reasonWords } from '../server/core/reasons.ts'
import { waitFor } from './helpers/events.ts'
import { KEY, PipelineHarness, type HarnessOptions } from './helpers/pipeline.ts'

let h: PipelineHarness

afterEach(async () => {
  await h.close()
})

/** Kit's lists lag new subscribers by 1.5 s here; removals look again every 0.3 s or so for 10 s. */
const LAGGING: HarnessOptions = {
  kit: { listLagMs: 1_500 },
  pipeline: { retry: { baseMs: 30, maxMs: 100, rateLimitWaitMs: 300, listLagWindowMs: 10_000, listLagRetryMs: 150 } },
}

const lookups = () => h.kit.requests.filter((r) => r.method === 'GET' && r.path === '/v4/subscribers').length

/** Waits until the delivery has been seen waiting for Kit's list, then until it settles. */
async function waitedThenSettled(eventId: string) {
  const waiting = await waitFor(
    () => {
      const d = h.delivery(eventId)
      return d && d.status !== 'pending' ? d : undefined
    },
    { what: 'a first attempt' },
  )
  expect(waiting.status).toBe('retrying')
  expect(waiting.reason).toBe('list_lag')
  expect(waiting.last_error).toContain('10 seconds')
  return h.settled(eventId)
}

describe('removals for a subscriber someone else just created in Kit', () => {
  it('access.revoked removes the tag once Kit lists the subscriber', async () => {
    h = await PipelineHarness.start(LAGGING)
    await h.connect()
    h.kit.createSubscriber(KEY, { email: 'fresh@example.com', tags: ['Access: gold', 'Other'] })
    const eventId = await h.send({ type: 'access.revoked', memberId: 'm_fresh', email: 'fresh@example.com', access: { level: 'gold' } })
    const d = await waitedThenSettled(eventId)
    expect(d.status).toBe('succeeded')
    expect(d.attempts).toBeGreaterThanOrEqual(2)
    expect(h.tagNames('fresh@example.com')).toEqual(['Other'])
  })

  it('subscription.canceled mapped to removals and unsubscribe applies once Kit lists the subscriber', async () => {
    h = await PipelineHarness.start(LAGGING)
    await h.connect()
    await h.putMappings((doc) => {
      doc.events['subscription.canceled'] = {
        add_tags: [],
        remove_tags: [{ name: 'Active Member' }],
        add_to_forms: [],
        add_to_sequences: [],
        unsubscribe: true,
      }
    })
    h.kit.createSubscriber(KEY, { email: 'cancel@example.com', tags: ['Active Member'] })
    const eventId = await h.send({
      type: 'subscription.canceled',
      memberId: 'm_cancel',
      email: 'cancel@example.com',
      subscription: { id: 's_cancel', plan: 'pro', status: 'canceled' },
    })
    expect((await waitedThenSettled(eventId)).status).toBe('succeeded')
    expect(h.subscriber('cancel@example.com')).toMatchObject({ state: 'cancelled' })
    expect(h.tagNames('cancel@example.com')).toEqual([])
  })

  it('user.deleted unsubscribes once Kit lists the subscriber', async () => {
    h = await PipelineHarness.start(LAGGING)
    await h.connect()
    await h.putMappings((doc) => {
      doc.events['user.deleted'].unsubscribe = true
    })
    h.kit.createSubscriber(KEY, { email: 'leaver@example.com' })
    const eventId = await h.send({ type: 'user.deleted', memberId: 'm_leaver', email: 'leaver@example.com' })
    expect((await waitedThenSettled(eventId)).status).toBe('succeeded')
    expect(h.subscriber('leaver@example.com')?.state).toBe('cancelled')
  })

  it("is not brought forward when Kit answers other deliveries: the wait is for Kit's list, not an outage", async () => {
    h = await PipelineHarness.start({
      kit: { listLagMs: 1_500 },
      pipeline: { retry: { baseMs: 30, maxMs: 100, rateLimitWaitMs: 300, listLagWindowMs: 60_000, listLagRetryMs: 5_000 } },
    })
    await h.connect()
    h.kit.createSubscriber(KEY, { email: 'later@example.com', tags: ['Access: gold'] })
    const eventId = await h.send({ type: 'access.revoked', memberId: 'm_later', email: 'later@example.com', access: { level: 'gold' } })
    await waitFor(() => h.delivery(eventId)?.status === 'retrying', { what: "a delivery waiting for Kit's list" })
    const nextAt = () =>
      (h.app.sqlite.prepare('SELECT next_attempt_at AS t FROM deliveries WHERE event_id = ?').get(eventId) as { t: number }).t
    const planned = nextAt()
    expect(planned).toBeGreaterThan(Date.now())
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_other', email: 'other@example.com' }))).status).toBe(
      'succeeded',
    )
    expect(nextAt()).toBe(planned)
    expect(h.delivery(eventId)?.status).toBe('retrying')
    expect(lookups()).toBe(1)
  })

  it("skips with the reason once the window after the event's receipt has passed and Kit still has nobody", async () => {
    h = await PipelineHarness.start({
      kit: { listLagMs: 1_500 },
      pipeline: { retry: { baseMs: 30, maxMs: 100, rateLimitWaitMs: 300, listLagWindowMs: 1_000, listLagRetryMs: 100 } },
    })
    await h.connect()
    const eventId = await h.send({ type: 'access.revoked', memberId: 'm_nobody', email: 'nobody@example.com', access: { level: 'gold' } })
    const d = await h.settled(eventId)
    expect(d.status).toBe('skipped')
    expect(d.reason).toBe('not_in_kit')
    expect(d.last_error).toBe(reasonWords('not_in_kit', { email: 'nobody@example.com', window: '1 second' }))
    // 0, 0.1–0.2, 0.3–0.6 s, … and one last look at 1 s: a few lookups, never more (on a busy
    // machine a slow first attempt leaves room for fewer, but Kit is always asked again).
    expect(lookups()).toBeGreaterThanOrEqual(2)
    expect(lookups()).toBeLessThanOrEqual(5)
    expect(h.subscriber('nobody@example.com')).toBeUndefined()
  })

  it("a removal that found nobody does not make the member's earlier sign-up, arriving late, stale", async () => {
    h = await PipelineHarness.start({
      kit: { listLagMs: 1_500 },
      pipeline: { retry: { baseMs: 30, maxMs: 100, rateLimitWaitMs: 300, listLagWindowMs: 300, listLagRetryMs: 100 } },
    })
    await h.connect()
    const now = Date.now()
    const revoked = await h.send({
      type: 'access.revoked',
      memberId: 'm_late',
      email: 'late@example.com',
      access: { level: 'gold' },
      time: new Date(now).toISOString(),
    })
    expect((await h.settled(revoked)).status).toBe('skipped')
    const signedUp = await h.send({
      type: 'user.signed_up',
      memberId: 'm_late',
      email: 'late@example.com',
      firstName: 'Lou',
      time: new Date(now - 60_000).toISOString(),
    })
    const d = await h.settled(signedUp)
    expect(d.status).toBe('succeeded')
    expect(h.subscriber('late@example.com')).toMatchObject({ first_name: 'Lou' })
    expect(h.tagNames('late@example.com')).toEqual(['New Member'])
  })

  it("a removal put back for Kit's budget resumes without looking the subscriber up again", async () => {
    // 20 requests per 1.5 s (19 for deliveries): thirty untags cannot fit in one window.
    h = await PipelineHarness.start({ kit: { listLagMs: 0 }, config: { kitRateLimit: 20, kitRateWindowMs: 1500 } })
    await h.connect()
    const tags = Array.from({ length: 30 }, (_, i) => `Old ${String(i + 1).padStart(2, '0')}`)
    h.kit.createSubscriber(KEY, { email: 'known@example.com', tags })
    await h.putMappings((doc) => {
      doc.events['access.revoked'] = {
        add_tags: [],
        remove_tags: tags.map((name) => ({ name })),
        add_to_forms: [],
        add_to_sequences: [],
        unsubscribe: false,
      }
    })
    const eventId = await h.send({ type: 'access.revoked', memberId: 'm_known', email: 'known@example.com', access: { level: 'gold' } })
    await waitFor(() => h.delivery(eventId)?.last_error?.startsWith("Waiting for Kit's rate limit"), {
      what: 'the delivery put back for the budget',
    })
    const d = await h.settled(eventId, { timeoutMs: 20_000 })
    expect(d.status).toBe('succeeded')
    expect(h.tagNames('known@example.com')).toEqual([])
    expect(lookups()).toBe(1)
    const untags = h.kit.requests.filter((r) => r.method === 'DELETE' && /^\/v4\/tags\/\d+\/subscribers\/\d+$/.test(r.path))
    expect(untags).toHaveLength(30)
  }, 30_000)

  it('a removal that found nobody still makes an older snapshot of the member stale', async () => {
    h = await PipelineHarness.start({
      kit: { listLagMs: 1_500 },
      pipeline: { retry: { baseMs: 30, maxMs: 100, rateLimitWaitMs: 300, listLagWindowMs: 300, listLagRetryMs: 100 } },
    })
    await h.connect()
    const now = Date.now()
    const revoked = await h.send({
      type: 'access.revoked',
      memberId: 'm_gone',
      email: 'gone@example.com',
      access: { level: 'gold' },
      time: new Date(now).toISOString(),
    })
    expect((await h.settled(revoked)).status).toBe('skipped')
    const snapshot = await h.send({
      type: 'member.snapshot',
      memberId: 'm_gone',
      email: 'gone@example.com',
      access: { level: 'gold' },
      time: new Date(now - 60_000).toISOString(),
    })
    const d = await h.settled(snapshot)
    expect(d.status).toBe('skipped')
    expect(d.reason).toBe('stale_snapshot')
    expect(d.last_error).toContain(revoked)
    expect(h.subscriber('gone@example.com')).toBeUndefined()
  })
})
