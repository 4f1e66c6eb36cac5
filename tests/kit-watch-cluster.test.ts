/**
 * The poll with two instances on one PostgreSQL database: one poll per connection per interval
 * between them (the poll row is claimed by moving its due time), and an unsubscribe made in Kit
 * reaches the platform once.
 */
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/events.ts'
import { receiverForTests } from './helpers/platform-receiver.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()
const INTERVAL_MS = 1000
let h: PipelineHarness | undefined
const receiver = receiverForTests(async () => {
  await h?.close()
  h = undefined
})

const polls = (c: PipelineHarness) => c.kit.requests.filter((r) => r.method === 'GET' && r.path === '/v4/subscribers')

describe.skipIf(!pgUp)('the Kit watch on two instances sharing PostgreSQL', () => {
  it('polls each connection once per interval between them, and reports an unsubscribe once', async () => {
    h = await PipelineHarness.start({
      postgres: 'kitwatch',
      instances: 2,
      connected: true,
      kit: { listLagMs: 200 },
      config: { databasePoolSize: 4, kitPollIntervalS: INTERVAL_MS / 1000, platformEvents: { url: receiver.url, secret: receiver.secret } },
    })
    const c = h
    const id = await c.send({ type: 'user.signed_up', memberId: 'm_ada', email: 'ada@example.com', firstName: 'Ada' })
    await waitFor(
      async () => {
        const res = await c.app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=10', headers: asA })
        return (res.json().items as { event_id: string; status: string }[]).some((d) => d.event_id === id && d.status === 'succeeded')
      },
      { what: 'the sign-up delivered', timeoutMs: 15_000 },
    )
    await waitFor(() => polls(c).length > 0, { what: 'a first poll', timeoutMs: 5000 })
    const from = polls(c).length
    const started = Date.now()
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS * 4 + 200))
    const elapsed = Date.now() - started
    const seen = polls(c).slice(from)
    expect(seen.length).toBeGreaterThanOrEqual(2)
    expect(seen.length).toBeLessThanOrEqual(Math.ceil(elapsed / INTERVAL_MS))
    for (let i = 1; i < seen.length; i += 1) expect(seen[i]!.at - seen[i - 1]!.at).toBeGreaterThanOrEqual(INTERVAL_MS - 50)

    c.kit.changeState(KEY, 'ada@example.com', 'cancelled')
    await waitFor(() => receiver.accepted().some((r) => r.body.type === 'kit.subscriber.unsubscribed'), {
      what: 'the unsubscribe',
      timeoutMs: 5000,
    })
    const settledAt = polls(c).length
    await waitFor(() => polls(c).length >= settledAt + 2, { what: 'two more polls', timeoutMs: 5000 })
    const unsubscribed = receiver.accepted().filter((r) => r.body.type === 'kit.subscriber.unsubscribed')
    expect(unsubscribed).toHaveLength(1)
    expect(unsubscribed[0]).toMatchObject({ verified: true, body: { subject: 'members/m_ada', communityid: 'c_alpha' } })
  }, 60_000)
})
