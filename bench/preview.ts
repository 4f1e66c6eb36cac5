/**
 * Benchmark — mappings preview: how long `POST /api/v1/mappings/preview` takes for a community
 * holding 10,000 events, on the real server (production mode) over HTTP. The events are posted
 * signed through the intake, spread over the seven live event types (each member one event), with
 * as many again for another community beside it; neither is connected, so the events are stored
 * and nothing is sent. The draft adds two rules and a member filter to saved mappings that hold
 * one rule. After two warm-up calls, the median of BENCH_PREVIEW_RUNS (default 9) calls is
 * compared with the goal: well under a second, here < 250 ms. Kit must hear nothing.
 *
 * SQLite always; PostgreSQL too when it answers at 127.0.0.1:5432 (BENCH_PREVIEW_POSTGRES=0 skips
 * it). BENCH_PREVIEW_EVENTS (default 10000) sets the events per community.
 */
import { availableParallelism, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { envInt, median, newSecrets, round, tempDir } from './lib/env.ts'
import { event, member, postAll, type MemberEvent } from './lib/events.ts'
import { cpuSeconds } from './lib/processes.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { CAPACITY_EVENTS_RATE_LIMIT, startServer } from './lib/server.ts'
import { api, type Api } from './lib/session.ts'
import { RESULTS } from './intake.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'
import { createTestDatabase } from '../tests/helpers/postgres.ts'

const COMMUNITY = 'c_preview'
const NEIGHBOUR = 'c_preview_neighbour'
const GOAL_MS = 250
const LIVE_TYPES = [
  'user.signed_up',
  'user.updated',
  'user.deleted',
  'subscription.started',
  'subscription.canceled',
  'access.granted',
  'access.revoked',
] as const
const PLANS = ['pro-annual', 'pro-monthly', 'starter']
const LEVELS = ['gold', 'silver']

/** One event per member, the types taking turns, plans and levels varied, one in ten from a domain the filter leaves out. */
function heldEvents(communityId: string, count: number): MemberEvent[] {
  const t0 = Date.now() - 3_600_000
  return Array.from({ length: count }, (_, i) => {
    const m = member(communityId, 'p', i)
    if (i % 10 === 0) m.email = `p.${i}@blocked.example`
    const type = LIVE_TYPES[i % LIVE_TYPES.length] as string
    const plan = PLANS[i % PLANS.length] as string
    const data: Record<string, unknown> = type.startsWith('subscription.')
      ? { subscription: { id: `s_${m.id}`, plan, status: type === 'subscription.started' ? 'active' : 'canceled' } }
      : type.startsWith('access.')
        ? { access: { level: LEVELS[i % LEVELS.length] } }
        : {}
    const e = event(m, type, t0 + i, data)
    ;(e.data.member as Record<string, unknown>).fields = { mk_subscription_plan: plan }
    return e
  })
}

const rule = (plan: string, tag: string) => ({
  conditions: [{ field: 'subscription.plan', op: 'is', value: plan }],
  add_tags: [{ name: tag }],
  remove_tags: [],
  add_to_forms: [],
  add_to_sequences: [],
  unsubscribe: false,
})

async function call(client: Api, method: string, path: string, body?: unknown): Promise<unknown> {
  const { status, body: answer } = await client.call(method, path, body)
  if (status !== 200) throw new Error(`${method} ${path} answered ${status}: ${JSON.stringify(answer)}`)
  return answer
}

interface Measured {
  medianMs: number
  maxMs: number
  /** CPU time the server process used per call (PostgreSQL's own work not included): the work itself, whatever else runs. */
  cpuMsPerCall: number
  /** The machine's 1-minute load average when the calls ended. */
  load: number
  typesCounted: number
  eventsPlanned: number
}

interface PreviewAnswer {
  events: { considered: number }[]
}

/** Stores the events through the intake, saves the mappings, then times the preview. */
async function measure(dialect: string, env: Record<string, string>, events: number, runs: number): Promise<Measured> {
  const kit = await startKitStandin({ apiKeys: [] })
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir(`kit-bench-preview-${dialect}`),
    secrets,
    kitUrl: kit.url,
    env: { ...CAPACITY_EVENTS_RATE_LIMIT, ...env },
  })
  try {
    const started = performance.now()
    for (const communityId of [COMMUNITY, NEIGHBOUR]) {
      const statuses = await postAll(server.url, secrets.hmacKey, heldEvents(communityId, events), 16)
      const refused = statuses.filter((s) => s !== 202).length
      if (refused > 0) throw new Error(`${refused} events were not accepted`)
    }
    log(`preview [${dialect}]: ${events} events stored for each of 2 communities in ${round((performance.now() - started) / 1000)} s`)

    const client = api(server.url, secrets.jwtSecret, COMMUNITY)
    const saved = (await call(client, 'GET', '/mappings')) as { events: Record<string, { rules?: unknown[] }>; filter?: unknown }
    saved.events['subscription.started']!.rules = [rule('pro-annual', 'Annual')]
    await call(client, 'PUT', '/mappings', saved)
    const draft = structuredClone(saved)
    draft.events['subscription.started']!.rules = [rule('pro-annual', 'Annual'), rule('starter', 'Starter')]
    draft.events['user.signed_up']!.rules = [rule('pro-monthly', 'Monthly')]
    draft.filter = [{ field: 'member.email_domain', op: 'is_not', value: 'blocked.example' }]

    const before = kit.requests.length
    const cpu = () => cpuSeconds(server.pid)
    const times: number[] = []
    let answer: PreviewAnswer | undefined
    let cpu0 = 0
    for (let run = 0; run < runs + 2; run++) {
      if (run === 2) cpu0 = cpu()
      const t = performance.now()
      answer = (await call(client, 'POST', '/mappings/preview', { draft })) as PreviewAnswer
      if (run >= 2) times.push(performance.now() - t)
    }
    const cpuMsPerCall = ((cpu() - cpu0) * 1000) / runs
    if (kit.requests.length !== before) throw new Error(`the preview made ${kit.requests.length - before} Kit requests`)
    const planned = (answer?.events ?? []).reduce((n, e) => n + e.considered, 0)
    return {
      medianMs: median(times),
      maxMs: Math.max(...times),
      cpuMsPerCall,
      load: loadavg()[0] ?? 0,
      typesCounted: answer?.events.length ?? 0,
      eventsPlanned: planned,
    }
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
}

function outcomeOf(dialect: string, events: number, runs: number, m: Measured): Outcome {
  log(
    `preview [${dialect}]: ${m.typesCounted} event types, ${m.eventsPlanned} events planned twice each; median ${round(m.medianMs)} ms, slowest ${round(m.maxMs)} ms over ${runs} calls`,
  )
  log(
    `preview [${dialect}]: ${round(m.cpuMsPerCall)} ms of the server's CPU per call; load average ${round(m.load)} on ${availableParallelism()} cores`,
  )
  const outcome: Outcome = {
    name: `preview-${dialect}`,
    figures: {
      events_held: events,
      events_planned: m.eventsPlanned,
      event_types: m.typesCounted,
      runs,
      median_ms: round(m.medianMs),
      max_ms: round(m.maxMs),
      cpu_ms_per_call: round(m.cpuMsPerCall),
      load_average: round(m.load),
      ratio_to_goal: round(m.medianMs / GOAL_MS),
    },
    goal: `median < ${GOAL_MS} ms for a community holding ${events} events (well under a second), no Kit request`,
    status: verdictOf(m.medianMs < GOAL_MS),
    verdict: `median ${round(m.medianMs)} ms = ${round(m.medianMs / GOAL_MS)} × the ${GOAL_MS} ms goal line`,
  }
  printOutcome(outcome)
  return outcome
}

export async function previewBenchmark(): Promise<Outcome[]> {
  const events = envInt('BENCH_PREVIEW_EVENTS', 10_000)
  const runs = envInt('BENCH_PREVIEW_RUNS', 9)
  const outcomes = [outcomeOf('sqlite', events, runs, await measure('sqlite', {}, events, runs))]
  if (process.env.BENCH_PREVIEW_POSTGRES === '0') return outcomes
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  try {
    database = await createTestDatabase('kitbenchpreview')
  } catch (error) {
    const outcome: Outcome = {
      name: 'preview-postgres',
      figures: {},
      goal: `median < ${GOAL_MS} ms`,
      status: 'skipped',
      verdict: `PostgreSQL not reachable (${error instanceof Error ? error.message : String(error)})`,
    }
    printOutcome(outcome)
    return [...outcomes, outcome]
  }
  try {
    outcomes.push(outcomeOf('postgres', events, runs, await measure('postgres', { DATABASE_URL: database.url }, events, runs)))
  } finally {
    await database.drop()
  }
  return outcomes
}

runIfMain(import.meta.url, previewBenchmark, RESULTS)
