/**
 * Benchmark — fairness: community A has a backlog of events that each need about 100 Kit calls
 * (a mapping that adds 50 tags and removes 50 others), community B is otherwise idle and sends
 * one event at a time for as long as A's backlog lasts. Both have their own Kit key; each key's
 * budget is Kit's 120 requests, over a window shortened to 10 s so the run takes under two minutes.
 * Goal: B's p95 delivery latency (event accepted → delivery succeeded, from the deliveries API)
 * under 2 s. Reported beside it: A's drain time against the floor its own budget sets.
 *
 * BENCH_FAIRNESS_HEAVY_EVENTS (default 12) scales A's backlog; B sends at least
 * BENCH_FAIRNESS_LIGHT_EVENTS (default 10) events, and more while A's backlog is not done.
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

const HEAVY_KEY = 'kit_bench_fairness_heavy'
const LIGHT_KEY = 'kit_bench_fairness_light'
const HEAVY = 'c_fair_heavy'
const LIGHT = 'c_fair_light'
const LIMIT = 120
const WINDOW_MS = 10_000
const ADD = Array.from({ length: 50 }, (_, i) => `Heavy add ${String(i + 1).padStart(2, '0')}`)
const REMOVE = Array.from({ length: 50 }, (_, i) => `Heavy old ${String(i + 1).padStart(2, '0')}`)
/** Pause between two of B's events, after the previous one was delivered. */
const LIGHT_GAP_MS = 1_000
const GOAL_P95_MS = 2_000

interface DeliveryItem {
  event_id: string
  status: string
  created_at: string
  updated_at: string
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN

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

export async function fairnessBenchmark(): Promise<Outcome[]> {
  const heavyEvents = envInt('BENCH_FAIRNESS_HEAVY_EVENTS', 12)
  const minLightEvents = envInt('BENCH_FAIRNESS_LIGHT_EVENTS', 10)
  log(`fairness: A has ${heavyEvents} events of ~${ADD.length + REMOVE.length + 1} Kit calls each; B sends one event at a time while A's backlog lasts (at least ${minLightEvents}); Kit limit ${LIMIT} requests / ${WINDOW_MS / 1000} s per key`)

  const kit = await startKitStandin({ apiKeys: [HEAVY_KEY, LIGHT_KEY], rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } })
  kit.seed(HEAVY_KEY, { tags: [...ADD, ...REMOVE] })
  const secrets = newSecrets()
  const server = await startServer({ dir: tempDir('kit-bench-fairness'), secrets, kitUrl: kit.url, rateLimit: LIMIT, rateWindowMs: WINDOW_MS })
  try {
    const heavyApi = api(server.url, secrets.jwtSecret, HEAVY)
    const lightApi = api(server.url, secrets.jwtSecret, LIGHT)
    await connect(heavyApi, HEAVY_KEY)
    await connect(lightApi, LIGHT_KEY)
    const doc = (await heavyApi.call('GET', '/mappings')).body as { events: Record<string, { add_tags: unknown[]; remove_tags: unknown[] }> }
    const signUp = doc.events['user.signed_up']
    if (!signUp) throw new Error('the mapping document has no user.signed_up')
    signUp.add_tags = ADD.map((name) => ({ name }))
    signUp.remove_tags = REMOVE.map((name) => ({ name }))
    const saved = await heavyApi.call('PUT', '/mappings', doc)
    if (saved.status !== 200) throw new Error(`PUT /api/v1/mappings answered ${saved.status}: ${JSON.stringify(saved.body)}`)
    await sleep(WINDOW_MS + 100)

    const from = kit.requests.length
    const t0 = Date.now() - 60_000
    const backlog = Array.from({ length: heavyEvents }, (_, i) => event(member(HEAVY, 'heavy', i), 'user.signed_up', t0 + i))
    const started = performance.now()
    const statuses = await postAll(server.url, secrets.hmacKey, backlog, 4)
    if (statuses.some((s) => s !== 202)) throw new Error(`A's events were not all accepted: ${statuses.join(', ')}`)
    log(`fairness: A's ${heavyEvents} events accepted; B starts sending`)

    const reader = new DeliveryReader(server.databasePath)
    const sent: string[] = []
    let heavyDoneAt: number | null = null
    const heavyDone = () => {
      if (heavyDoneAt === null && reader.terminalOf(HEAVY) === heavyEvents) heavyDoneAt = performance.now()
    }
    const watch = setInterval(heavyDone, 100)
    for (let i = 0; i < minLightEvents || (heavyDoneAt === null && i < 2000); i++) {
      const e = event(member(LIGHT, 'light', i), 'user.signed_up', Date.now())
      const status = await postEvent(server.url, secrets.hmacKey, e)
      if (status !== 202) throw new Error(`B's event ${i} answered ${status}`)
      sent.push(e.id)
      const deadline = Date.now() + 5 * 60_000
      while (!reader.isTerminal(LIGHT, e.id)) {
        if (Date.now() > deadline) throw new Error(`B's event ${i} was not delivered within 5 minutes`)
        await sleep(20)
      }
      if (i % 10 === 9) log(`fairness: B ${i + 1} delivered; A ${reader.terminalOf(HEAVY)}/${heavyEvents} done`)
      await sleep(LIGHT_GAP_MS)
    }
    const lightEvents = sent.length
    await waitTerminal(reader, heavyEvents + lightEvents, { timeoutMs: 20 * 60_000, progressMs: 15_000, onProgress: (c) => log(`fairness: ${JSON.stringify(c)}`) })
    heavyDone()
    clearInterval(watch)
    reader.close()
    const heavySeconds = ((heavyDoneAt ?? performance.now()) - started) / 1000

    const light = (await allDeliveries(lightApi)).filter((d) => sent.includes(d.event_id))
    const lightOk = light.filter((d) => d.status === 'succeeded')
    const latencies = lightOk.map((d) => Date.parse(d.updated_at) - Date.parse(d.created_at)).sort((a, b) => a - b)
    const p50 = percentile(latencies, 50)
    const p95 = percentile(latencies, 95)
    const max = latencies.at(-1) ?? Number.NaN
    const heavy = await allDeliveries(heavyApi)
    const heavyOk = heavy.filter((d) => d.status === 'succeeded').length

    const heavyRequests = pipelineRequests(kit.requests, from).filter((r) => r.key === HEAVY_KEY)
    const throttled = pipelineRequests(kit.requests, from).filter((r) => r.status === 429).length
    const floor = (heavyRequests.length / LIMIT) * (WINDOW_MS / 1000)
    const ratio = heavySeconds / floor
    const inOrder = sent.map((id) => lightOk.find((d) => d.event_id === id)).map((d) => (d ? Date.parse(d.updated_at) - Date.parse(d.created_at) : 'failed'))
    log(`fairness: B latency p50 ${p50} ms, p95 ${p95} ms, max ${max} ms over ${latencies.length} events (in sending order, ms: ${inOrder.join(' ')})`)
    log(`fairness: A ${heavyOk}/${heavyEvents} succeeded in ${heavySeconds.toFixed(1)} s with ${heavyRequests.length} Kit requests; floor ${floor.toFixed(1)} s → ${ratio.toFixed(3)} × floor; ${throttled} × 429`)

    const allDelivered = lightOk.length === lightEvents && heavyOk === heavyEvents
    const pass = allDelivered && p95 < GOAL_P95_MS
    const outcome: Outcome = {
      name: 'fairness',
      figures: {
        kit_limit: `${LIMIT} / ${WINDOW_MS / 1000} s per key`,
        light_events: lightEvents,
        light_p50_ms: p50,
        light_p95_ms: p95,
        light_max_ms: max,
        heavy_events: heavyEvents,
        heavy_kit_requests: heavyRequests.length,
        heavy_seconds: round(heavySeconds, 1),
        heavy_floor_seconds: round(floor, 1),
        heavy_ratio_to_floor: round(ratio, 3),
        responses_429: throttled,
        all_delivered: allDelivered,
      },
      goal: "B's p95 < 2 s",
      status: verdictOf(pass),
      verdict:
        `B p50 ${p50} ms, p95 ${p95} ms (max ${max} ms); A ${heavyEvents} × ~${Math.round(heavyRequests.length / heavyEvents)} requests in ${heavySeconds.toFixed(1)} s, ` +
        `floor ${floor.toFixed(1)} s → ${ratio.toFixed(2)} × floor, ${throttled} × 429${allDelivered ? '' : ' — not every delivery succeeded'}`,
    }
    printOutcome(outcome)
    return [outcome]
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
}

runIfMain(import.meta.url, fairnessBenchmark, RESULTS)
