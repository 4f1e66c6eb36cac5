/**
 * Three instances of the real app sharing one PostgreSQL database and one Kit stand-in: events
 * arrive at any of them, each is stored once and delivered once, a member's events land in order,
 * and Kit's budget holds for the three together. Skipped without PostgreSQL (fails in CI).
 */
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { KitStandin } from './kit-standin/server.ts'
import { makeEvent, postEvent, waitFor } from './helpers/events.ts'
import { asA, FAST_RETRY, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()

const LIMIT = 12
const WINDOW_MS = 1500

type Cluster = PipelineHarness

const startCluster = (instances: number): Promise<Cluster> =>
  PipelineHarness.start({
    kit: { apiKeys: [KEY], rateLimit: { limit: LIMIT, windowMs: WINDOW_MS }, listLagMs: 0 },
    postgres: 'kitcluster',
    instances,
    config: { databasePoolSize: 4, kitRateLimit: LIMIT, kitRateWindowMs: WINDOW_MS, apiRateLimit: 10_000 },
    pipeline: { retry: { ...FAST_RETRY, rateLimitWaitMs: WINDOW_MS } },
  })

const stopCluster = async (c: Cluster | undefined): Promise<void> => c?.close()

async function allDeliveries(app: FastifyInstance): Promise<{ event_id: string; status: string; kit_requests: number }[]> {
  const items: { event_id: string; status: string; kit_requests: number }[] = []
  let cursor: string | null = null
  do {
    const url: string = `/api/v1/deliveries?limit=100${cursor ? `&cursor=${cursor}` : ''}`
    const page = (await app.inject({ method: 'GET', url, headers: asA })).json() as { items: typeof items; next_cursor: string | null }
    items.push(...page.items)
    cursor = page.next_cursor
  } while (cursor)
  return items
}

/** The most requests the stand-in received for one key in any window of `windowMs`. */
function busiestWindow(kit: KitStandin, windowMs: number): number {
  const times = kit.requests
    .filter((r) => r.key === KEY)
    .map((r) => r.at)
    .sort((a, b) => a - b)
  let most = 0
  let start = 0
  for (let end = 0; end < times.length; end++) {
    while ((times[end] as number) - (times[start] as number) >= windowMs) start++
    most = Math.max(most, end - start + 1)
  }
  return most
}

describe.skipIf(!pgUp)('three instances on one PostgreSQL database', () => {
  let cluster: Cluster | undefined

  beforeAll(async () => {
    cluster = await startCluster(3)
  }, 60_000)
  afterAll(async () => {
    await stopCluster(cluster)
  })

  it("stores each event once whichever instances receive it, delivers it once, and keeps each member's order", async () => {
    const c = cluster as Cluster
    const [, b] = c.apps as [FastifyInstance, FastifyInstance, FastifyInstance]
    await c.connect()
    // Seen on every instance: the connection lives in the shared database.
    for (const app of c.apps)
      expect((await app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()).toMatchObject({ connected: true })

    const members = 16
    const t0 = Date.now() - 60_000
    const events: Record<string, unknown>[] = []
    for (let i = 0; i < members; i++) {
      const member = { memberId: `m_${i}`, email: `member${i}@example.com` }
      const subscription = { id: `sub_${i}`, plan: 'pro', status: 'active' }
      events.push(makeEvent({ type: 'user.signed_up', ...member, time: new Date(t0 + i).toISOString() }))
      events.push(makeEvent({ type: 'subscription.started', ...member, time: new Date(t0 + 1000 + i).toISOString(), subscription }))
      events.push(
        makeEvent({
          type: 'subscription.canceled',
          ...member,
          time: new Date(t0 + 2000 + i).toISOString(),
          subscription: { ...subscription, status: 'canceled' },
        }),
      )
    }
    // Every event goes to two instances at once (the platform retrying on another node).
    const answers = await Promise.all(
      events.flatMap((event, i) => [
        postEvent(c.apps[i % 3] as FastifyInstance, c.secret, event),
        postEvent(c.apps[(i + 1) % 3] as FastifyInstance, c.secret, event),
      ]),
    )
    const accepted = answers.filter((r) => r.statusCode === 202 && r.json().status === 'accepted').length
    const duplicates = answers.filter((r) => r.json().status === 'duplicate').length
    expect(accepted).toBe(events.length)
    expect(duplicates).toBe(events.length)

    const finished = await waitFor(
      async () => {
        const rows = await allDeliveries(b)
        return rows.length === events.length && rows.every((r) => ['succeeded', 'failed', 'skipped'].includes(r.status)) ? rows : undefined
      },
      { timeoutMs: 60_000, what: 'every delivery finished' },
    )
    expect(finished.filter((r) => r.status !== 'succeeded')).toEqual([])
    expect(new Set(finished.map((r) => r.event_id)).size).toBe(events.length)

    const account = c.kit.account(KEY)
    expect(account.subscribers).toHaveLength(members)
    const cancelled = account.tags.find((t) => t.name === 'Cancelled')
    const active = account.tags.find((t) => t.name === 'Active Member')
    expect(cancelled).toBeDefined()
    for (const s of account.subscribers) {
      // The newest event (cancel) was applied last: Cancelled present, Active Member removed.
      expect(s.tags.has((cancelled as { id: number }).id)).toBe(true)
      if (active) expect(s.tags.has(active.id)).toBe(false)
    }
    // One tag per name: no instance created a tag another had already created.
    expect(new Set(account.tags.map((t) => t.name.toLowerCase())).size).toBe(account.tags.length)
  }, 90_000)

  it("keeps Kit's budget for the three together: never more than the limit in any window", async () => {
    const c = cluster as Cluster
    expect(busiestWindow(c.kit, WINDOW_MS)).toBeLessThanOrEqual(LIMIT)
    expect(c.kit.requests.filter((r) => r.status === 429).length).toBeLessThanOrEqual(2)
  })
})
