/**
 * Benchmark — fairness: busy communities each have a backlog of events that need about 100 Kit
 * calls each (a mapping that adds 50 tags and removes 50 others), and a quiet community sends one
 * event at a time for as long as the backlogs last. Every community has its own Kit key. Goal: the
 * quiet community's p95 delivery latency (event accepted → delivery succeeded, from the deliveries
 * API) under 2 s. Three runs:
 *
 * - `fairness`: one busy community (A), 12 events, each key at Kit's 120 requests over a window
 *   shortened to 10 s; reported beside B's latency, A's drain time against its budget's floor.
 * - `fairness-5-busy` and `fairness-20-busy`: 5 and 20 busy communities (4 events each), each key
 *   at 60 requests / 10 s, the stand-in answering every request after 100 ms: the busy keys settle
 *   into overlapping bursts that can fill all four consumer slots.
 *
 * BENCH_FAIRNESS_HEAVY_EVENTS (default 12) scales A's backlog; the quiet community sends at least
 * BENCH_FAIRNESS_LIGHT_EVENTS (default 10) events, and more while the backlogs last.
 * BENCH_FAIRNESS_BUSY lists the runs by their number of busy communities (default "1,5,20");
 * BENCH_FAIRNESS_BUSY_EVENTS (default 4) is each busy community's backlog there.
 */
import { performance } from 'node:perf_hooks'
import { DeliveryReader, waitTerminal } from './lib/deliveries.ts'
import { envInt, newSecrets, round, sleep, tempDir } from './lib/env.ts'
import { event, member, postAll, postEvent } from './lib/events.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { startServer } from './lib/server.ts'
import { api, connect, type Api } from './lib/session.ts'
import { pipelineRequests } from './lib/standin.ts'
import { RESULTS } from './intake.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const LIGHT_KEY = 'kit_bench_fairness_light'
const LIGHT = 'c_fair_light'
const ADD = Array.from({ length: 50 }, (_, i) => `Heavy add ${String(i + 1).padStart(2, '0')}`)
const REMOVE = Array.from({ length: 50 }, (_, i) => `Heavy old ${String(i + 1).padStart(2, '0')}`)
/** Pause between two of the quiet community's events, after the previous one was delivered. */
const LIGHT_GAP_MS = 1_000
const GOAL_P95_MS = 2_000

interface Scenario {
  name: string
  busy: number
  busyEvents: number
  limit: number
  windowMs: number
  latencyMs: number
}

interface DeliveryItem {
  event_id: string
  status: string
  created_at: string
  updated_at: string
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN

async function allDeliveries(client: Api): Promise<DeliveryItem[]> {
  const items: DeliveryItem[] = []
  let cursor: string | null = null
  do {
    const { status, body } = await client.call('GET', `/deliveries?limit=100${cursor ? `&cursor=${cursor}` : ''}`)
    if (status !== 200) throw new Error(`GET /api/v1/deliveries answered ${status}`)
    const page = body as { items: DeliveryItem[]; next_cursor: string | null }
    items.push(...page.items)
    cursor = page.next_cursor
  } while (cursor)
  return items
}

const busyCommunity = (i: number) => `c_fair_busy_${String(i + 1).padStart(2, '0')}`
const busyKey = (i: number) => `kit_bench_fairness_busy_${String(i + 1).padStart(2, '0')}`

export async function fairnessBenchmark(): Promise<Outcome[]> {
  const runs = (process.env.BENCH_FAIRNESS_BUSY ?? '1,5,20')
    .split(',')
    .map((n) => Number(n.trim()))
    .filter((n) => Number.isInteger(n) && n > 0)
  const scenarios: Scenario[] = runs.map((busy) =>
    busy === 1
      ? { name: 'fairness', busy, busyEvents: envInt('BENCH_FAIRNESS_HEAVY_EVENTS', 12), limit: 120, windowMs: 10_000, latencyMs: 0 }
      : {
          name: `fairness-${busy}-busy`,
          busy,
          busyEvents: envInt('BENCH_FAIRNESS_BUSY_EVENTS', 4),
          limit: 60,
          windowMs: 10_000,
          latencyMs: 100,
        },
  )
  const outcomes: Outcome[] = []
  for (const scenario of scenarios) outcomes.push(await runScenario(scenario, envInt('BENCH_FAIRNESS_LIGHT_EVENTS', 10)))
  return outcomes
}

async function runScenario(scenario: Scenario, minLightEvents: number): Promise<Outcome> {
  const { name, busy, busyEvents, limit: LIMIT, windowMs: WINDOW_MS, latencyMs } = scenario
  const busyIds = Array.from({ length: busy }, (_, i) => busyCommunity(i))
  const busyKeys = Array.from({ length: busy }, (_, i) => busyKey(i))
  log(
    `${name}: ${busy} busy communit${busy === 1 ? 'y' : 'ies'} with ${busyEvents} events of ~${ADD.length + REMOVE.length + 1} Kit calls each; ` +
      `the quiet one sends one event at a time while the backlogs last (at least ${minLightEvents}); Kit limit ${LIMIT} requests / ${WINDOW_MS / 1000} s per key, answers after ${latencyMs} ms`,
  )

  const kit = await startKitStandin({ apiKeys: [...busyKeys, LIGHT_KEY], rateLimit: { limit: LIMIT, windowMs: WINDOW_MS }, latencyMs })
  for (const key of busyKeys) kit.seed(key, { tags: [...ADD, ...REMOVE] })
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir('kit-bench-fairness'),
    secrets,
    kitUrl: kit.url,
    rateLimit: LIMIT,
    rateWindowMs: WINDOW_MS,
  })
  try {
    const lightApi = api(server.url, secrets.jwtSecret, LIGHT)
    await connect(lightApi, LIGHT_KEY)
    const busyApis = busyIds.map((id) => api(server.url, secrets.jwtSecret, id))
    for (const [i, client] of busyApis.entries()) {
      await connect(client, busyKeys[i] as string)
      const doc = (await client.call('GET', '/mappings')).body as {
        events: Record<string, { add_tags: unknown[]; remove_tags: unknown[] }>
      }
      const signUp = doc.events['user.signed_up']
      if (!signUp) throw new Error('the mapping document has no user.signed_up')
      signUp.add_tags = ADD.map((tag) => ({ name: tag }))
      signUp.remove_tags = REMOVE.map((tag) => ({ name: tag }))
      const saved = await client.call('PUT', '/mappings', doc)
      if (saved.status !== 200) throw new Error(`PUT /api/v1/mappings answered ${saved.status}: ${JSON.stringify(saved.body)}`)
    }
    await sleep(WINDOW_MS + 100)

    const from = kit.requests.length
    const t0 = Date.now() - 60_000
    const backlog = busyIds.flatMap((id) =>
      Array.from({ length: busyEvents }, (_, i) => event(member(id, 'heavy', i), 'user.signed_up', t0 + i)),
    )
    const busyTotal = backlog.length
    const started = performance.now()
    const statuses = await postAll(server.url, secrets.hmacKey, backlog, 4)
    if (statuses.some((s) => s !== 202)) throw new Error(`the busy events were not all accepted: ${statuses.join(', ')}`)
    log(`${name}: ${busyTotal} busy events accepted; the quiet community starts sending`)

    const reader = new DeliveryReader(server.databasePath)
    const busyTerminal = () => busyIds.reduce((sum, id) => sum + reader.terminalOf(id), 0)
    const sent: string[] = []
    let busyDoneAt: number | null = null
    const busyDone = () => {
      if (busyDoneAt === null && busyTerminal() === busyTotal) busyDoneAt = performance.now()
    }
    const watch = setInterval(busyDone, 100)
    for (let i = 0; i < minLightEvents || (busyDoneAt === null && i < 2000); i++) {
      const e = event(member(LIGHT, 'light', i), 'user.signed_up', Date.now())
      const status = await postEvent(server.url, secrets.hmacKey, e)
      if (status !== 202) throw new Error(`the quiet community's event ${i} answered ${status}`)
      sent.push(e.id)
      const deadline = Date.now() + 5 * 60_000
      while (!reader.isTerminal(LIGHT, e.id)) {
        if (Date.now() > deadline) throw new Error(`the quiet community's event ${i} was not delivered within 5 minutes`)
        await sleep(20)
      }
      if (i % 10 === 9) log(`${name}: quiet ${i + 1} delivered; busy ${busyTerminal()}/${busyTotal} done`)
      await sleep(LIGHT_GAP_MS)
    }
    const lightEvents = sent.length
    await waitTerminal(reader, busyTotal + lightEvents, {
      timeoutMs: 20 * 60_000,
      progressMs: 15_000,
      onProgress: (c) => log(`${name}: ${JSON.stringify(c)}`),
    })
    busyDone()
    clearInterval(watch)
    reader.close()
    const busySeconds = ((busyDoneAt ?? performance.now()) - started) / 1000

    const light = (await allDeliveries(lightApi)).filter((d) => sent.includes(d.event_id))
    const lightOk = light.filter((d) => d.status === 'succeeded')
    const latencies = lightOk.map((d) => Date.parse(d.updated_at) - Date.parse(d.created_at)).sort((a, b) => a - b)
    const p50 = percentile(latencies, 50)
    const p95 = percentile(latencies, 95)
    const max = latencies.at(-1) ?? Number.NaN
    let busyOk = 0
    for (const client of busyApis) busyOk += (await allDeliveries(client)).filter((d) => d.status === 'succeeded').length

    const requests = pipelineRequests(kit.requests, from)
    const busyRequests = requests.filter((r) => r.key !== null && busyKeys.includes(r.key))
    const throttled = requests.filter((r) => r.status === 429).length
    // Each busy key's own budget sets a floor; they run side by side, so the floor is the largest.
    const perKey = busyKeys.map((key) => busyRequests.filter((r) => r.key === key).length)
    const floor = (Math.max(...perKey) / LIMIT) * (WINDOW_MS / 1000)
    const ratio = busySeconds / floor
    const inOrder = sent
      .map((id) => lightOk.find((d) => d.event_id === id))
      .map((d) => (d ? Date.parse(d.updated_at) - Date.parse(d.created_at) : 'failed'))
    log(
      `${name}: quiet latency p50 ${p50} ms, p95 ${p95} ms, max ${max} ms over ${latencies.length} events (in sending order, ms: ${inOrder.join(' ')})`,
    )
    log(
      `${name}: busy ${busyOk}/${busyTotal} succeeded in ${busySeconds.toFixed(1)} s with ${busyRequests.length} Kit requests; one key's floor ${floor.toFixed(1)} s → ${ratio.toFixed(3)} × floor; ${throttled} × 429`,
    )

    const allDelivered = lightOk.length === lightEvents && busyOk === busyTotal
    const pass = allDelivered && p95 < GOAL_P95_MS
    const outcome: Outcome = {
      name,
      figures: {
        kit_limit: `${LIMIT} / ${WINDOW_MS / 1000} s per key`,
        kit_latency_ms: latencyMs,
        busy_communities: busy,
        light_events: lightEvents,
        light_p50_ms: p50,
        light_p95_ms: p95,
        light_max_ms: max,
        heavy_events: busyTotal,
        heavy_kit_requests: busyRequests.length,
        heavy_seconds: round(busySeconds, 1),
        heavy_floor_seconds: round(floor, 1),
        heavy_ratio_to_floor: round(ratio, 3),
        responses_429: throttled,
        all_delivered: allDelivered,
      },
      goal: "the quiet community's p95 < 2 s",
      status: verdictOf(pass),
      verdict:
        `quiet p50 ${p50} ms, p95 ${p95} ms (max ${max} ms); ${busy} busy × ${busyEvents} events × ~${Math.round(busyRequests.length / busyTotal)} requests in ${busySeconds.toFixed(1)} s, ` +
        `one key's floor ${floor.toFixed(1)} s → ${ratio.toFixed(2)} × floor, ${throttled} × 429${allDelivered ? '' : ' — not every delivery succeeded'}`,
    }
    printOutcome(outcome)
    return outcome
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
}

runIfMain(import.meta.url, fairnessBenchmark, RESULTS)
