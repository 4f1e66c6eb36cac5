/**
 * Benchmark 1 — intake: signed events accepted per second at 32 keep-alive connections, the real
 * server (its own process, production mode, SQLite on disk, community not connected so deliveries
 * are recorded as skipped) against a bare Fastify route (its own process) that only parses JSON and
 * answers 202. The load generator is a third process and pre-signs every event before the clock
 * starts. Goal: real / bare ≥ 0.5. For comparison the real server is also loaded with the community
 * connected (Kit's default budget, so the backlog grows instead of being skipped). Also measures the
 * server's footprint (benchmark 5) on the way.
 *
 * BENCH_INTAKE_SECONDS (default 10) sets the measured window; a 2 s warm-up precedes it.
 */
import { fileURLToPath } from 'node:url'
import { DeliveryReader } from './lib/deliveries.ts'
import { envInt, freePort, median, newSecrets, round, sleep, tempDir } from './lib/env.ts'
import { cpuSeconds, rssKiB, spawnTs } from './lib/processes.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { CAPACITY_EVENTS_RATE_LIMIT, startServer } from './lib/server.ts'
import { api, connect } from './lib/session.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

export const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url))

const CONNECTIONS = 32
const KIT_KEY = 'kit_bench_intake_key'
/** The community every pre-signed intake event belongs to (see intake-loadgen.ts). */
const INTAKE_COMMUNITY = 'c_intake'
const WARMUP_MS = 2_000

interface LoadgenResult {
  statuses: Record<string, number>
  measuredMs: number
  exhausted: boolean
  sent: number
  socketErrors: number
  presignMs: number
  presigned: number
  /** Share of one core the load generator used while loading. */
  cpuShare: number
}

interface IntakeRun extends LoadgenResult {
  /** 202 answers per second of the measured window. */
  rate: number
  /** Share of one core the target used while loaded (warm-up included). */
  targetCpu: number
}

async function loadgen(
  target: number,
  port: number,
  hmacKey: string,
  options: { count: number; durationMs: number; cycle: boolean },
): Promise<IntakeRun> {
  const child = spawnTs('bench/intake-loadgen.ts', {
    ...process.env,
    LOADGEN: JSON.stringify({ port, hmacKey, connections: CONNECTIONS, warmupMs: WARMUP_MS, ...options }),
  })
  while (!child.output().includes('presigned\n') && child.child.exitCode === null) await sleep(20)
  const loadStart = Date.now()
  const targetCpu0 = cpuSeconds(target)
  const code = await child.exited
  const targetCpu = (cpuSeconds(target) - targetCpu0) / ((Date.now() - loadStart) / 1000)
  const line = child.output().trim().split('\n').at(-1) ?? ''
  if (code !== 0 || !line.startsWith('{')) throw new Error(`the load generator failed (exit ${code}):\n${child.output()}`)
  const result = JSON.parse(line) as LoadgenResult
  const accepted = result.statuses['202'] ?? 0
  return { ...result, rate: result.measuredMs > 0 ? accepted / (result.measuredMs / 1000) : 0, targetCpu }
}

function describeRun(label: string, run: IntakeRun): string {
  const others = Object.entries(run.statuses).filter(([s]) => s !== '202')
  const extra = [
    `target ${Math.round(run.targetCpu * 100)}% of a core, load generator ${Math.round(run.cpuShare * 100)}%`,
    others.length ? `other answers ${JSON.stringify(Object.fromEntries(others))}` : '',
    run.socketErrors ? `${run.socketErrors} socket errors` : '',
    run.exhausted ? 'ran out of pre-signed events early' : '',
  ].filter(Boolean)
  return `${label}: ${Math.round(run.rate)} events/s (${run.statuses['202'] ?? 0} × 202 in ${(run.measuredMs / 1000).toFixed(1)} s; ${extra.join('; ')})`
}

/** The bare route's rate, and its resident memory at idle (the Node + tsx + Fastify baseline). */
export async function bareIntake(durationMs: number): Promise<{ run: IntakeRun; idleKiB: number }> {
  const port = await freePort()
  const bare = spawnTs('bench/bare-server.ts', { ...process.env, PORT: String(port) })
  try {
    const deadline = Date.now() + 20_000
    while (!bare.output().includes('listening')) {
      if (bare.child.exitCode !== null || Date.now() > deadline) throw new Error(`the bare server did not start:\n${bare.output()}`)
      await sleep(50)
    }
    await sleep(2_000)
    const idleKiB = rssKiB(bare.pid)
    return { run: await loadgen(bare.pid, port, newSecrets().hmacKey, { count: 20_000, durationMs, cycle: true }), idleKiB }
  } finally {
    await bare.kill('SIGTERM')
  }
}

export interface ServerIntake {
  run: IntakeRun
  rss: { idleKiB: number; loadPeakKiB: number; loadMedianKiB: number; afterKiB: number }
  storedEvents: number
}

/**
 * The real server under the same load, with its resident memory sampled before, during and after.
 * `connected`: the community has a Kit account behind it (the stand-in, Kit's default budget of
 * 120 requests a minute), so the backlog waits for Kit instead of being skipped at once.
 */
export async function serverIntake(durationMs: number, connected: boolean): Promise<ServerIntake> {
  const secrets = newSecrets()
  const dir = tempDir('kit-bench-intake')
  const kit = connected ? await startKitStandin({ apiKeys: [KIT_KEY] }) : null
  const server = await startServer({ dir, secrets, kitUrl: kit?.url ?? 'http://127.0.0.1:9', env: CAPACITY_EVENTS_RATE_LIMIT })
  try {
    if (kit) await connect(api(server.url, secrets.jwtSecret, INTAKE_COMMUNITY), KIT_KEY)
    await sleep(3_000)
    const idleKiB = rssKiB(server.pid)
    const samples: number[] = []
    const sampler = setInterval(() => samples.push(rssKiB(server.pid)), 250)
    const presign = envInt('BENCH_INTAKE_PRESIGN', 100_000)
    let run: IntakeRun
    try {
      run = await loadgen(server.pid, server.port, secrets.hmacKey, { count: presign, durationMs, cycle: false })
    } finally {
      clearInterval(sampler)
    }
    await sleep(5_000)
    const afterKiB = rssKiB(server.pid)
    const reader = new DeliveryReader(server.databasePath)
    const storedEvents = reader.eventRows()
    reader.close()
    return { run, rss: { idleKiB, loadPeakKiB: Math.max(...samples), loadMedianKiB: median(samples), afterKiB }, storedEvents }
  } finally {
    await server.kill('SIGTERM')
    await kit?.close()
  }
}

const mib = (kib: number) => round(kib / 1024, 1)

export function footprintOutcome(real: ServerIntake, bareIdleKiB?: number): Outcome {
  const { rss } = real
  const baseline = bareIdleKiB === undefined ? '' : ` (a bare Fastify process under tsx: ${mib(bareIdleKiB)} MiB idle)`
  return {
    name: 'footprint',
    figures: {
      rss_idle_mib: mib(rss.idleKiB),
      rss_load_median_mib: mib(rss.loadMedianKiB),
      rss_load_peak_mib: mib(rss.loadPeakKiB),
      rss_after_load_mib: mib(rss.afterKiB),
      ...(bareIdleKiB === undefined ? {} : { bare_fastify_rss_idle_mib: mib(bareIdleKiB) }),
    },
    goal: 'none (reported)',
    status: 'info',
    verdict: `server RSS ${mib(rss.idleKiB)} MiB idle, ${mib(rss.loadMedianKiB)} MiB median / ${mib(rss.loadPeakKiB)} MiB peak under the intake load, ${mib(rss.afterKiB)} MiB 5 s after${baseline}`,
  }
}

export async function intakeBenchmark(): Promise<Outcome[]> {
  const durationMs = envInt('BENCH_INTAKE_SECONDS', 10) * 1000
  log(`intake: ${CONNECTIONS} keep-alive connections, ${WARMUP_MS / 1000} s warm-up + ${durationMs / 1000} s measured per target`)
  log(
    'intake: the load generator is a separate process (pre-signed events, raw keep-alive sockets); each target is its own process; the coordinator idles while measuring',
  )
  const { run: bare, idleKiB: bareIdleKiB } = await bareIntake(durationMs)
  log(describeRun('intake: bare Fastify route (parse JSON, answer 202)', bare))
  const real = await serverIntake(durationMs, false)
  log(describeRun('intake: real server, community not connected (verify, validate, commit, 202; deliveries recorded as skipped)', real.run))
  const connected = await serverIntake(durationMs, true)
  log(describeRun('intake: real server, community connected (Kit budget 120/min, so the backlog waits)', connected.run))
  const accepted = real.run.statuses['202'] ?? 0
  log(
    `intake: the server stored ${real.storedEvents} events; ${accepted} were acknowledged inside the measured window (warm-up and tail not counted)`,
  )
  const ratio = bare.rate > 0 ? real.run.rate / bare.rate : 0
  const acknowledgedNotStored = real.storedEvents < accepted
  const intake: Outcome = {
    name: 'intake',
    figures: {
      connections: CONNECTIONS,
      measured_seconds: durationMs / 1000,
      load_generator: 'separate process, pre-signed events, raw keep-alive sockets',
      server_events_per_s: Math.round(real.run.rate),
      bare_events_per_s: Math.round(bare.rate),
      ratio: round(ratio),
      server_connected_events_per_s: Math.round(connected.run.rate),
      ratio_connected: round(bare.rate > 0 ? connected.run.rate / bare.rate : 0),
      server_cpu_share: round(real.run.targetCpu),
      bare_cpu_share: round(bare.targetCpu),
      loadgen_cpu_share_vs_bare: round(bare.cpuShare),
      server_non_202: Object.entries(real.run.statuses)
        .filter(([s]) => s !== '202')
        .reduce((n, [, c]) => n + c, 0),
      server_socket_errors: real.run.socketErrors,
    },
    goal: 'server / bare ≥ 0.5',
    status: verdictOf(ratio >= 0.5 && !acknowledgedNotStored),
    verdict: `${Math.round(real.run.rate)} vs ${Math.round(bare.rate)} events/s, ratio ${ratio.toFixed(2)} (connected community: ${Math.round(connected.run.rate)} events/s, ratio ${(bare.rate > 0 ? connected.run.rate / bare.rate : 0).toFixed(2)})${acknowledgedNotStored ? ' — and fewer events stored than acknowledged' : ''}`,
  }
  const footprint = footprintOutcome(real, bareIdleKiB)
  printOutcome(intake)
  printOutcome(footprint)
  return [intake, footprint]
}

runIfMain(import.meta.url, intakeBenchmark, RESULTS)
