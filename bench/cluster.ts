/**
 * Benchmark — cluster: the server as several instances on one PostgreSQL database.
 *
 * Intake: signed events accepted per second by 1 and by 3 instances, side by side, the load spread
 * evenly over the instances (one load generator process, 32 keep-alive connections in all,
 * community not connected). Reported, with the ratio 3 : 1; on a machine with few cores the
 * instances, the database and the load generator share them, so the ratio says more about the
 * machine than about the server.
 *
 * Drain: a backlog of BENCH_CLUSTER_DRAIN_MEMBERS (default 250) members × 4 events posted to 3
 * instances sharing one Kit key limited to 20 requests per 2 s (stand-in and instances). Floor =
 * (requests Kit admitted / 20) × 2 s (a 429 uses no budget). Goal: ≤ 1.10 × floor, ≤ 2 × 429 across all instances.
 *
 * BENCH_INTAKE_SECONDS (default 10) sets the measured intake window; a 2 s warm-up precedes it.
 */
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { clusterDatabase, postSpread, startCluster, type Cluster } from './lib/cluster.ts'
import { envInt, newSecrets, round, sleep } from './lib/env.ts'
import { LIFECYCLE_FIELDS, LIFECYCLE_TAGS, lifecycleBacklog } from './lib/events.ts'
import { cpuSeconds, cpuSecondsOf, spawnTs } from './lib/processes.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import type { ServerHandle } from './lib/server.ts'
import { api, connect } from './lib/session.ts'
import { breakdown, maxPerWindow, pipelineRequests, slotTurnaround } from './lib/standin.ts'
import { openStore, waitAllTerminal } from './lib/store.ts'
import { checkKit, describeCheck } from './lib/verify.ts'
import { RESULTS } from './intake.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const CONNECTIONS = 32
const WARMUP_MS = 2_000
const KEY = 'kit_bench_cluster_key'
const DRAIN_COMMUNITY = 'c_cluster_drain'
const LIMIT = 20
const WINDOW_MS = 2_000
/** Slots of every window only the panel's calls may use (the server's interactive reserve at this limit). */
const BACKGROUND_RESERVE = 1

interface ClusterLoad {
  statuses: Record<string, number>
  rate: number
  connections: number
  exhausted: boolean
  socketErrors: number
  cpuShare: number
}

const up = (cluster: Cluster) => cluster.instances.filter((s): s is ServerHandle => s !== null)

type IntakeRun = ClusterLoad & { targetCpu: number; postgresCpu: number }

async function intakeOf(instances: number, durationMs: number): Promise<IntakeRun> {
  const secrets = newSecrets()
  const database = await clusterDatabase(`kit_bench_intake${instances}`)
  const cluster = await startCluster({
    count: instances,
    database,
    secrets,
    kitUrl: 'http://127.0.0.1:9',
    rateLimit: 120,
    rateWindowMs: 60_000,
    label: 'kit-bench-cluster',
  })
  try {
    await sleep(2_000)
    const servers = up(cluster)
    const count = Math.ceil(envInt('BENCH_INTAKE_PRESIGN', 100_000) / instances)
    const child = spawnTs('bench/cluster-loadgen.ts', {
      ...process.env,
      LOADGEN: JSON.stringify({
        ports: servers.map((s) => s.port),
        hmacKey: secrets.hmacKey,
        count,
        connections: CONNECTIONS,
        warmupMs: WARMUP_MS,
        durationMs,
      }),
    })
    while (!child.output().includes('presigned\n') && child.child.exitCode === null) await sleep(20)
    const loadStart = Date.now()
    const cpu0 = servers.reduce((n, s) => n + cpuSeconds(s.pid), 0)
    const pg0 = cpuSecondsOf('postgres')
    const code = await child.exited
    const seconds = (Date.now() - loadStart) / 1000
    const targetCpu = (servers.reduce((n, s) => n + cpuSeconds(s.pid), 0) - cpu0) / seconds
    const postgresCpu = (cpuSecondsOf('postgres') - pg0) / seconds
    const line = child.output().trim().split('\n').at(-1) ?? ''
    if (code !== 0 || !line.startsWith('{')) throw new Error(`the load generator failed (exit ${code}):\n${child.output()}`)
    return { ...(JSON.parse(line) as ClusterLoad), targetCpu, postgresCpu }
  } finally {
    await cluster.close()
  }
}

function describeLoad(label: string, run: IntakeRun): string {
  const others = Object.entries(run.statuses).filter(([s]) => s !== '202')
  const extra = [
    `instances ${Math.round(run.targetCpu * 100)}% of a core in all, PostgreSQL ${Math.round(run.postgresCpu * 100)}%, load generator ${Math.round(run.cpuShare * 100)}% (of ${availableParallelism()} cores)`,
    others.length ? `other answers ${JSON.stringify(Object.fromEntries(others))}` : '',
    run.socketErrors ? `${run.socketErrors} socket errors` : '',
    run.exhausted ? 'ran out of pre-signed events early' : '',
  ].filter(Boolean)
  return `${label}: ${Math.round(run.rate)} events/s over ${run.connections} connections (${extra.join('; ')})`
}

async function intakeOutcome(): Promise<Outcome> {
  const durationMs = envInt('BENCH_INTAKE_SECONDS', 10) * 1000
  log(
    `cluster intake: ${CONNECTIONS} keep-alive connections spread over the instances, ${WARMUP_MS / 1000} s warm-up + ${durationMs / 1000} s measured; community not connected`,
  )
  const one = await intakeOf(1, durationMs)
  log(describeLoad('cluster intake: 1 instance ', one))
  const three = await intakeOf(3, durationMs)
  log(describeLoad('cluster intake: 3 instances', three))
  const ratio = one.rate > 0 ? three.rate / one.rate : 0
  return {
    name: 'cluster-intake',
    figures: {
      connections: CONNECTIONS,
      measured_seconds: durationMs / 1000,
      one_instance_events_per_s: Math.round(one.rate),
      three_instances_events_per_s: Math.round(three.rate),
      ratio_three_to_one: round(ratio),
      one_instance_cpu_share: round(one.targetCpu),
      three_instances_cpu_share: round(three.targetCpu),
      one_instance_postgres_cpu_share: round(one.postgresCpu),
      three_instances_postgres_cpu_share: round(three.postgresCpu),
      loadgen_cpu_share: round(three.cpuShare),
    },
    goal: 'none (reported)',
    status: 'info',
    verdict: `1 instance ${Math.round(one.rate)} events/s, 3 instances ${Math.round(three.rate)} events/s → ratio ${ratio.toFixed(2)} (PostgreSQL)`,
  }
}

async function drainOutcome(): Promise<Outcome> {
  const members = envInt('BENCH_CLUSTER_DRAIN_MEMBERS', 250)
  const backlog = lifecycleBacklog(DRAIN_COMMUNITY, 'cdrain', members)
  const eventCount = backlog.events.length
  log(
    `cluster drain: ${eventCount} events (${members} members × 4) posted to 3 instances; one key, Kit limit ${LIMIT} / ${WINDOW_MS / 1000} s at the stand-in and in each instance`,
  )
  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } })
  const secrets = newSecrets()
  const database = await clusterDatabase('kit_bench_drain')
  const cluster = await startCluster({
    count: 3,
    database,
    secrets,
    kitUrl: kit.url,
    rateLimit: LIMIT,
    rateWindowMs: WINDOW_MS,
    label: 'kit-bench-cluster-drain',
  })
  const store = openStore(database.url)
  try {
    const first = cluster.instances[0]
    if (!first) throw new Error('instance 1 is not up')
    await connect(api(first.url, secrets.jwtSecret, DRAIN_COMMUNITY), KEY)
    await sleep(WINDOW_MS + 100)
    const from = kit.requests.length
    const started = performance.now()
    const statuses = await postSpread(cluster.urls(), secrets.hmacKey, backlog.events, 16)
    const enqueueMs = performance.now() - started
    const refused = statuses.filter((s) => s !== 202).length
    if (refused > 0) throw new Error(`${refused} events were not accepted`)
    log(`cluster drain: ${eventCount} events accepted in ${(enqueueMs / 1000).toFixed(1)} s; draining…`)
    const counts = await waitAllTerminal(store, eventCount, {
      timeoutMs: 20 * 60_000,
      progressMs: 15_000,
      onProgress: (c) => {
        const made = pipelineRequests(kit.requests, from)
        const elapsed = (performance.now() - started) / 1000
        log(
          `cluster drain: ${Math.round(elapsed)} s — ${c.succeeded + c.failed + c.skipped}/${eventCount} terminal, ${made.length} Kit requests (${(made.length / elapsed).toFixed(1)}/s, Kit allows ${LIMIT / (WINDOW_MS / 1000)}/s), ${made.filter((r) => r.status === 429).length} × 429`,
        )
      },
    })
    const seconds = (performance.now() - started) / 1000
    const made = pipelineRequests(kit.requests, from)
    const throttled = made.filter((r) => r.status === 429).length
    const most = maxPerWindow(kit.requests, WINDOW_MS, KEY)
    // The server keeps one slot in twenty for the panel: a backlog alone can use 19, about 1.05 × floor at best.
    const turnaround = slotTurnaround(made, LIMIT - BACKGROUND_RESERVE, WINDOW_MS, KEY)
    // Requests Kit refused with 429 used no budget, so the floor counts only those it admitted.
    const admitted = made.length - throttled
    const floor = (admitted / LIMIT) * (WINDOW_MS / 1000)
    const ratio = seconds / floor
    const check = checkKit(
      kit.account(KEY),
      backlog.members.map((m) => ({ email: m.email, tags: LIFECYCLE_TAGS, fields: LIFECYCLE_FIELDS })),
    )
    log(
      `cluster drain: done in ${seconds.toFixed(1)} s; ${made.length} Kit requests (${throttled} × 429, at most ${most} admitted in a ${WINDOW_MS / 1000} s window); floor ${floor.toFixed(1)} s for the ${admitted} admitted`,
    )
    log(
      `cluster drain: best possible ${round(LIMIT / (LIMIT - BACKGROUND_RESERVE), 3)} × floor (one slot in ${LIMIT} kept for the panel); ` +
        `a slot stayed unused past its window for ${Math.round(turnaround.medianMs)} ms (median; mean ${Math.round(turnaround.meanMs)} ms) before the next request took it`,
    )
    log(`cluster drain: deliveries ${JSON.stringify(counts)}; ${describeCheck(check)}`)
    log(`cluster drain: ${JSON.stringify(breakdown(made))}`)
    const pass = ratio <= 1.1 && throttled <= 2 && check.ok
    return {
      name: 'cluster-drain',
      figures: {
        instances: 3,
        events: eventCount,
        kit_limit: `${LIMIT} / ${WINDOW_MS / 1000} s`,
        seconds: round(seconds, 1),
        kit_requests: made.length,
        floor_seconds: round(floor, 1),
        ratio_to_floor: round(ratio, 3),
        responses_429: throttled,
        most_in_a_window: most,
        slot_idle_past_window_ms_median: Math.round(turnaround.medianMs),
        slot_idle_past_window_ms_mean: Math.round(turnaround.meanMs),
        enqueue_seconds: round(enqueueMs / 1000, 1),
        end_state_ok: check.ok,
      },
      goal: 'time ≤ 1.10 × floor, ≤ 2 × 429',
      status: verdictOf(pass),
      verdict: `3 instances: ${seconds.toFixed(1)} s for ${made.length} requests, floor ${floor.toFixed(1)} s → ${ratio.toFixed(3)} × floor, ${throttled} × 429${check.ok ? '' : ` — end state wrong: ${describeCheck(check)}`}`,
    }
  } finally {
    await store.close()
    await cluster.close()
    await kit.close()
  }
}

export async function clusterBenchmark(): Promise<Outcome[]> {
  const parts = process.argv.slice(2)
  const outcomes: Outcome[] = []
  if (parts.length === 0 || parts.includes('intake')) outcomes.push(await intakeOutcome())
  if (parts.length === 0 || parts.includes('drain')) outcomes.push(await drainOutcome())
  for (const o of outcomes) printOutcome(o)
  return outcomes
}

runIfMain(import.meta.url, clusterBenchmark, RESULTS)
