/**
 * Benchmark 3 — drain: a backlog of 2,000 events (500 members × the lifecycle mix) against a Kit
 * stand-in and a server both set to 20 requests per 2 s. Everything is enqueued first (processing
 * starts at once), then the clock runs until every delivery is terminal. The floor is the time
 * Kit's limit alone imposes on the requests actually made: (requests / 20) × 2 s.
 * Goal: time within 10 % of the floor, at most 2 answers 429.
 *
 * BENCH_DRAIN_MEMBERS (default 500) scales the backlog (4 events per member).
 */
import { performance } from 'node:perf_hooks'
import { DeliveryReader, waitTerminal } from './lib/deliveries.ts'
import { envInt, newSecrets, round, sleep, tempDir } from './lib/env.ts'
import { LIFECYCLE_FIELDS, LIFECYCLE_TAGS, lifecycleBacklog, postAll } from './lib/events.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { startServer } from './lib/server.ts'
import { api, connect } from './lib/session.ts'
import { breakdown, pipelineRequests } from './lib/standin.ts'
import { checkKit, describeCheck } from './lib/verify.ts'
import { RESULTS } from './intake.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const KEY = 'kit_bench_drain_key'
const COMMUNITY = 'c_drain'
const LIMIT = 20
const WINDOW_MS = 2_000

export async function drainBenchmark(): Promise<Outcome[]> {
  const members = envInt('BENCH_DRAIN_MEMBERS', 500)
  const backlog = lifecycleBacklog(COMMUNITY, 'drain', members)
  const eventCount = backlog.events.length
  log(
    `drain: ${eventCount} events (${members} members × 4), Kit limit ${LIMIT} requests / ${WINDOW_MS / 1000} s at the stand-in and in the server`,
  )

  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } })
  const secrets = newSecrets()
  const server = await startServer({ dir: tempDir('kit-bench-drain'), secrets, kitUrl: kit.url, rateLimit: LIMIT, rateWindowMs: WINDOW_MS })
  try {
    await connect(api(server.url, secrets.jwtSecret, COMMUNITY), KEY)
    await sleep(WINDOW_MS + 100)
    const from = kit.requests.length
    const started = performance.now()
    const startedAt = Date.now()
    const statuses = await postAll(server.url, secrets.hmacKey, backlog.events, 16)
    const enqueueMs = performance.now() - started
    const refused = statuses.filter((s) => s !== 202).length
    if (refused > 0) throw new Error(`${refused} events were not accepted`)
    log(`drain: ${eventCount} events accepted in ${(enqueueMs / 1000).toFixed(1)} s; draining…`)

    const reader = new DeliveryReader(server.databasePath)
    const counts = await waitTerminal(reader, eventCount, {
      timeoutMs: 20 * 60_000,
      progressMs: 15_000,
      onProgress: (c) => {
        const made = pipelineRequests(kit.requests, from)
        const elapsed = (performance.now() - started) / 1000
        log(
          `drain: ${Math.round(elapsed)} s — ${c.succeeded + c.failed + c.skipped}/${eventCount} terminal, ${made.length} Kit requests (${(made.length / elapsed).toFixed(1)}/s, Kit allows ${LIMIT / (WINDOW_MS / 1000)}/s), ${made.filter((r) => r.status === 429).length} × 429`,
        )
      },
    })
    const seconds = (performance.now() - started) / 1000
    reader.close()
    const made = pipelineRequests(kit.requests, from)
    const throttled = made.filter((r) => r.status === 429).length
    const floor = (made.length / LIMIT) * (WINDOW_MS / 1000)
    const ratio = seconds / floor
    const lastRequestAt = made.at(-1)?.at ?? startedAt
    const check = checkKit(
      kit.account(KEY),
      backlog.members.map((m) => ({ email: m.email, tags: LIFECYCLE_TAGS, fields: LIFECYCLE_FIELDS })),
    )
    log(
      `drain: done in ${seconds.toFixed(1)} s; ${made.length} Kit requests (${throttled} × 429); floor ${floor.toFixed(1)} s; last Kit request at ${((lastRequestAt - startedAt) / 1000).toFixed(1)} s`,
    )
    log(`drain: deliveries ${JSON.stringify(counts)}; ${describeCheck(check)}`)
    log(`drain: ${JSON.stringify(breakdown(made))}`)
    const pass = ratio <= 1.1 && throttled <= 2 && check.ok
    const outcome: Outcome = {
      name: 'drain',
      figures: {
        events: eventCount,
        kit_limit: `${LIMIT} / ${WINDOW_MS / 1000} s`,
        seconds: round(seconds, 1),
        kit_requests: made.length,
        floor_seconds: round(floor, 1),
        ratio_to_floor: round(ratio, 3),
        responses_429: throttled,
        enqueue_seconds: round(enqueueMs / 1000, 1),
        end_state_ok: check.ok,
      },
      goal: 'time ≤ 1.10 × floor, ≤ 2 × 429',
      status: verdictOf(pass),
      verdict: `${seconds.toFixed(1)} s for ${made.length} requests, floor ${floor.toFixed(1)} s → ${ratio.toFixed(3)} × floor, ${throttled} × 429${check.ok ? '' : ` — end state wrong: ${describeCheck(check)}`}`,
    }
    printOutcome(outcome)
    return [outcome]
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
}

runIfMain(import.meta.url, drainBenchmark, RESULTS)
