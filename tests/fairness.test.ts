import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { BudgetSpentError, RequestBudget } from '../server/kit/budget.ts'
import { KitClientFactory } from '../server/kit/client.ts'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'
import { buildTestApp } from './helpers/app.ts'
import { makeEvent, postEvent, type EventInput } from './helpers/events.ts'
import { sessionFor } from './helpers/tokens.ts'

const HEAVY_KEY = 'kit_fairness_heavy_0001'
const LIGHT_KEY = 'kit_fairness_light_0002'
const asHeavy = sessionFor('c_heavy')
const asLight = sessionFor('c_light')
/** Kit's budget here: 20 requests per 1.5 s, one kept for the panel. */
const LIMIT = 20
const WINDOW_MS = 1500
const TAGS = Array.from({ length: 30 }, (_, i) => `Heavy ${String(i + 1).padStart(2, '0')}`)
const HEAVY_MEMBERS = 4

let kit: KitStandin
let app: FastifyInstance
let secret: string

beforeEach(async () => {
  kit = await startKitStandin({ apiKeys: [HEAVY_KEY, LIGHT_KEY], rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } })
  secret = randomBytes(32).toString('base64')
  ;({ app } = await buildTestApp({
    kitApiUrl: kit.url,
    eventsSecrets: [secret],
    kitRateLimit: LIMIT,
    kitRateWindowMs: WINDOW_MS,
    apiRateLimit: 100_000,
  }))
})
afterEach(async () => {
  await app.close()
  await kit.close()
})

const connect = async (headers: Record<string, string>, apiKey: string) => {
  const res = await app.inject({ method: 'PUT', url: '/api/v1/connection', headers, payload: { api_key: apiKey } })
  expect(res.statusCode).toBe(200)
}

const send = async (input: EventInput) => {
  const event = makeEvent(input)
  const res = await postEvent(app, secret, event)
  expect(res.statusCode).toBe(202)
  return event.id as string
}

interface DeliveryDto {
  event_id: string
  status: string
  attempts: number
  last_error: string | null
  reason?: string | null
  kit_requests: number
}

const deliveries = async (headers: Record<string, string>): Promise<DeliveryDto[]> =>
  (await app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=100', headers })).json().items

/** Polls an asynchronous probe until it gives a value (the deliveries API answers asynchronously). */
async function waitFor<T>(probe: () => Promise<T | undefined>, { timeoutMs = 10_000, what = 'condition' } = {}): Promise<T> {
  const start = Date.now()
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const heavyRequests = () => kit.requests.filter((r) => r.key === HEAVY_KEY).length

/** The heavy community maps user.signed_up to thirty tags Kit already has: 31 Kit calls per event. */
async function mapThirtyTags() {
  kit.seed(HEAVY_KEY, { tags: TAGS })
  const doc = (await app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asHeavy })).json()
  doc.events['user.signed_up'].add_tags = TAGS.map((name) => ({ name }))
  expect((await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asHeavy, payload: doc })).statusCode).toBe(200)
}

describe('fairness between communities', () => {
  it("delivers a light community's event while a heavy backlog waits on its budget, with at most two heavy deliveries in flight", async () => {
    await connect(asHeavy, HEAVY_KEY)
    await connect(asLight, LIGHT_KEY)
    await mapThirtyTags()
    const heavy: string[] = []
    for (let i = 0; i < HEAVY_MEMBERS; i++)
      heavy.push(await send({ communityId: 'c_heavy', memberId: `m_h${i}`, email: `h${i}@example.com` }))

    // The heavy backlog spends its budget and gives its slots back: a delivery says it is waiting.
    const waiting = await waitFor(async () => (await deliveries(asHeavy)).find((d) => d.reason === 'kit_budget'), {
      what: 'a heavy delivery waiting for the budget',
    })
    expect(waiting.status).toBe('pending')
    expect(waiting.last_error).toMatch(/\(20 requests every 1\.5 seconds\); continues at \d\d:\d\d:\d\d UTC\.$/)

    const heavyBefore = heavyRequests()
    const light = await send({ communityId: 'c_light', memberId: 'm_l0', email: 'light@example.com' })
    const lightDone = await waitFor(async () => (await deliveries(asLight)).find((d) => d.event_id === light && d.status === 'succeeded'), {
      what: 'the light delivery',
    })
    // The light event did not queue behind the heavy budget: the heavy community could not even
    // spend one window's worth of requests meanwhile, and most of its backlog is still to do.
    expect(heavyRequests() - heavyBefore).toBeLessThan(LIMIT)
    expect((await deliveries(asHeavy)).filter((d) => d.status === 'succeeded').length).toBeLessThan(HEAVY_MEMBERS)
    expect(lightDone.attempts).toBe(1)

    const done = await waitFor(
      async () => {
        const list = await deliveries(asHeavy)
        return list.length === HEAVY_MEMBERS && list.every((d) => d.status === 'succeeded') ? list : undefined
      },
      { what: 'the heavy backlog', timeoutMs: 30_000 },
    )
    const credentials = app.sqlite.prepare('SELECT community_id, credential_id FROM connections').all() as {
      community_id: string
      credential_id: string
    }[]
    const heavyCredential = credentials.find((c) => c.community_id === 'c_heavy')?.credential_id as string
    expect(app.pipeline.consumer.peakInFlightByCredential().get(heavyCredential)).toBe(2)

    // Put back and resumed, never counted as failed attempts, and no call made twice: one upsert
    // and thirty tags per member, one tag list for the credential.
    for (const d of done) {
      expect(d.attempts).toBe(1)
      expect(d.last_error).toBeNull()
    }
    const tagCalls = kit.requests.filter(
      (r) => r.key === HEAVY_KEY && r.method === 'POST' && /^\/v4\/tags\/\d+\/subscribers\/\d+$/.test(r.path),
    )
    expect(tagCalls).toHaveLength(HEAVY_MEMBERS * TAGS.length)
    expect(new Set(tagCalls.map((r) => r.path)).size).toBe(HEAVY_MEMBERS * TAGS.length)
    expect(kit.requests.filter((r) => r.key === HEAVY_KEY && r.status === 429)).toHaveLength(0)
    const recorded = done.reduce((sum, d) => sum + d.kit_requests, 0)
    expect(recorded).toBe(HEAVY_MEMBERS * (1 + TAGS.length) + 1)
    for (let i = 0; i < HEAVY_MEMBERS; i++) {
      const s = kit.account(HEAVY_KEY).subscribers.find((x) => x.email_address === `h${i}@example.com`)
      expect(s?.tags.size).toBe(TAGS.length)
    }
  }, 60_000)
})

describe('busy communities filling every consumer slot', () => {
  const BUSY = ['c_busy_1', 'c_busy_2', 'c_busy_3', 'c_busy_4']
  const busyKey = (community: string) => `kit_fairness_${community}`
  const QUIET_KEY = 'kit_fairness_quiet_0003'
  const BUSY_TAGS = Array.from({ length: 50 }, (_, i) => `Busy ${String(i + 1).padStart(2, '0')}`)

  it("gives a quiet community's event a slot before any of their long deliveries is done, and none of them repeats a call", async () => {
    // Every Kit answer takes 50 ms and the budget is ample: each busy delivery (one upsert and
    // fifty tags) holds its slot for seconds unless it gives it back.
    await app.close()
    await kit.close()
    kit = await startKitStandin({
      apiKeys: [...BUSY.map(busyKey), QUIET_KEY],
      rateLimit: { limit: 10_000, windowMs: 60_000 },
      latencyMs: 50,
    })
    ;({ app } = await buildTestApp({
      kitApiUrl: kit.url,
      eventsSecrets: [secret],
      kitRateLimit: 10_000,
      kitRateWindowMs: 60_000,
      apiRateLimit: 100_000,
    }))
    for (const community of BUSY) {
      const headers = sessionFor(community)
      await connect(headers, busyKey(community))
      kit.seed(busyKey(community), { tags: BUSY_TAGS })
      const doc = (await app.inject({ method: 'GET', url: '/api/v1/mappings', headers })).json()
      doc.events['user.signed_up'].add_tags = BUSY_TAGS.map((name) => ({ name }))
      expect((await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers, payload: doc })).statusCode).toBe(200)
    }
    const asQuiet = sessionFor('c_quiet')
    await connect(asQuiet, QUIET_KEY)

    for (const community of BUSY) {
      for (let i = 0; i < 2; i++) await send({ communityId: community, memberId: `m_${i}`, email: `${community}.${i}@example.com` })
    }
    const inFlight = () => [...app.pipeline.consumer.inFlightByCredential().values()].reduce((sum, n) => sum + n, 0)
    await waitFor(async () => (inFlight() === 4 ? true : undefined), { what: 'every slot taken by a busy delivery' })

    const quiet = await send({ communityId: 'c_quiet', memberId: 'm_quiet', email: 'quiet@example.com' })
    const busyDoneWhenQuietWas = await waitFor(
      async () => {
        // Busy deliveries first: one finishing after this read is not counted, one before it is.
        const busyDone = (
          await Promise.all(BUSY.map(async (c) => (await deliveries(sessionFor(c))).filter((d) => d.status === 'succeeded').length))
        ).reduce((a, b) => a + b, 0)
        const done = (await deliveries(asQuiet)).find((d) => d.event_id === quiet && d.status === 'succeeded')
        return done ? busyDone : undefined
      },
      { what: 'the quiet delivery', timeoutMs: 30_000 },
    )
    expect(busyDoneWhenQuietWas).toBe(0)

    const all = await waitFor(
      async () => {
        const lists = await Promise.all(BUSY.map((c) => deliveries(sessionFor(c))))
        return lists.every((list) => list.length === 2 && list.every((d) => d.status === 'succeeded')) ? lists.flat() : undefined
      },
      { what: 'the busy backlogs', timeoutMs: 60_000 },
    )
    for (const d of all) expect(d.attempts).toBe(1)
    const busyKeys = BUSY.map(busyKey)
    const tagCalls = kit.requests.filter(
      (r) => r.key !== null && busyKeys.includes(r.key) && r.method === 'POST' && /^\/v4\/tags\/\d+\/subscribers\/\d+$/.test(r.path),
    )
    expect(tagCalls).toHaveLength(BUSY.length * 2 * BUSY_TAGS.length)
    expect(new Set(tagCalls.map((r) => `${r.key} ${r.path}`)).size).toBe(tagCalls.length)
  }, 120_000)
})

describe('a delivery put back for the budget', () => {
  it('keeps an older event of the same subscription, arriving meanwhile, from undoing what it already did', async () => {
    await connect(asHeavy, HEAVY_KEY)
    const extra = Array.from({ length: 25 }, (_, i) => `Cancelled ${String(i + 1).padStart(2, '0')}`)
    kit.seed(HEAVY_KEY, { tags: ['Active Member', 'Cancelled', ...extra] })
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asHeavy })).json()
    const only = (add: string[], remove: string[]) => ({
      add_tags: add.map((name) => ({ name })),
      remove_tags: remove.map((name) => ({ name })),
      add_to_forms: [],
      add_to_sequences: [],
      unsubscribe: false,
    })
    doc.events['subscription.started'] = only(['Active Member'], [])
    // One untag, then more tag calls than one window allows: the delivery is put back part-way.
    doc.events['subscription.canceled'] = only(['Cancelled', ...extra], ['Active Member'])
    expect((await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asHeavy, payload: doc })).statusCode).toBe(200)

    const t0 = Date.now()
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const member = { communityId: 'c_heavy', memberId: 'm_sub', email: 'sub@example.com' }
    const subscription = { id: 's_sub', plan: 'pro', status: 'active' }
    const find = async (eventId: string) => (await deliveries(asHeavy)).find((d) => d.event_id === eventId)
    const started = await send({ ...member, type: 'subscription.started', subscription, time: at(0) })
    await waitFor(async () => ((await find(started))?.status === 'succeeded' ? true : undefined), {
      what: 'the first subscription.started',
    })
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 100))

    const canceled = await send({
      ...member,
      type: 'subscription.canceled',
      subscription: { ...subscription, status: 'canceled' },
      time: at(20_000),
    })
    await waitFor(async () => ((await find(canceled))?.reason === 'kit_budget' ? true : undefined), {
      what: 'the cancellation put back for the budget',
    })
    // Sent before the cancellation, it arrives while the cancellation waits for the budget.
    const late = await send({ ...member, type: 'subscription.started', subscription, time: at(10_000) })
    const [lateDone, canceledDone] = await waitFor(
      async () => {
        const [l, c] = [await find(late), await find(canceled)]
        return l && c && ['succeeded', 'skipped'].includes(l.status) && c.status === 'succeeded' ? [l, c] : undefined
      },
      { what: 'both deliveries', timeoutMs: 20_000 },
    )
    expect(canceledDone.status).toBe('succeeded')
    expect(lateDone.status).toBe('skipped')
    expect(lateDone.reason).toBe('stale_event')
    expect(lateDone.last_error).toContain(canceled)
    expect(lateDone.last_error).toContain('s_sub')
    const s = kit.account(HEAVY_KEY).subscribers.find((x) => x.email_address === 'sub@example.com')
    const names = [...(s?.tags ?? [])].map((id) => kit.account(HEAVY_KEY).tags.find((t) => t.id === id)?.name)
    expect(names).not.toContain('Active Member')
    expect(names).toContain('Cancelled')
  }, 30_000)
})

describe('the Kit client for callers that must not wait', () => {
  it('refuses at once, sending nothing, when no slot is free, while an interactive call still waits its turn', async () => {
    const budget = new RequestBudget({ limit: 3, windowMs: 1000, interactiveReserve: 1 })
    const factory = new KitClientFactory({ baseUrl: kit.url, budget, credentialKey: Buffer.alloc(32, 3) })
    const background = factory.forKey(HEAVY_KEY, { priority: 'background', waitForBudget: false })
    await background.listTags()
    await background.listTags()
    const sent = kit.requests.length
    const refused = await background.listTags().then(
      () => null,
      (err: unknown) => err,
    )
    expect(refused).toBeInstanceOf(BudgetSpentError)
    const spent = refused as BudgetSpentError
    expect(spent.until).toBeGreaterThan(Date.now())
    expect(spent.until).toBeLessThanOrEqual(Date.now() + 1000)
    expect([spent.limit, spent.windowMs]).toEqual([3, 1000])
    expect(kit.requests.length).toBe(sent)
    expect(budget.usage(background.credentialId).waiting).toBe(0)

    // The panel's call takes the reserved slot, and after it a waiting one is answered too.
    const panel = factory.forKey(HEAVY_KEY, { priority: 'interactive' })
    await panel.listTags()
    await panel.listTags()
    expect(kit.requests.length).toBe(sent + 2)
  })
})
