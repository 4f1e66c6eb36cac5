/**
 * Kit watch economy: what the poll costs when nothing changes in Kit. The real server (production
 * mode, KIT_POLL_INTERVAL_S=1) with several connected communities, each on its own Kit account at
 * the stand-in; after the first poll, every Kit request over a number of intervals is counted.
 * Goal: at most 1 Kit request per connection per interval. Run: npx tsx bench/kit-watch.ts
 */
import { envInt, newSecrets, round, sleep, tempDir } from './lib/env.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { startServer } from './lib/server.ts'
import { api, connect } from './lib/session.ts'
import { RESULTS } from './intake.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const INTERVAL_S = 1

export async function kitWatchBenchmark(): Promise<Outcome[]> {
  const connections = envInt('BENCH_WATCH_CONNECTIONS', 5)
  const intervals = envInt('BENCH_WATCH_INTERVALS', 10)
  const keys = Array.from({ length: connections }, (_, i) => `kit_bench_watch_key_${String(i).padStart(4, '0')}`)
  const kit = await startKitStandin({ apiKeys: keys, rateLimit: { limit: 100_000, windowMs: 60_000 } })
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir('kit-bench-watch'),
    secrets,
    kitUrl: kit.url,
    env: { KIT_POLL_INTERVAL_S: String(INTERVAL_S) },
  })
  let measuredRequests: { counted: number; others: number; elapsedMs: number }
  try {
    for (const [i, key] of keys.entries()) await connect(api(server.url, secrets.jwtSecret, `c_watch_${i}`), key)
    // Each connection is first seen within a tick and first polled an interval later.
    await sleep(INTERVAL_S * 2500)
    const from = kit.requests.length
    const started = Date.now()
    await sleep(intervals * INTERVAL_S * 1000)
    const requests = kit.requests.slice(from)
    const polls = requests.filter((r) => r.method === 'GET' && r.path === '/v4/subscribers').length
    measuredRequests = { counted: polls, others: requests.length - polls, elapsedMs: Date.now() - started }
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
  const { counted, others, elapsedMs } = measuredRequests
  const measured = elapsedMs / (INTERVAL_S * 1000)
  const perConnectionInterval = (counted + others) / (connections * measured)
  log(`kit-watch: ${connections} connections × ${measured.toFixed(1)} intervals → ${counted} polls, ${others} other Kit requests`)
  const outcome: Outcome = {
    name: 'kit-watch',
    figures: {
      connections,
      intervals: round(measured),
      polls: counted,
      other_kit_requests: others,
      requests_per_connection_interval: round(perConnectionInterval),
    },
    goal: '≤ 1 Kit request per connection per poll interval when nothing changed',
    status: verdictOf(perConnectionInterval <= 1 && others === 0),
    verdict: `${perConnectionInterval.toFixed(2)} Kit requests per connection per interval`,
  }
  printOutcome(outcome)
  return [outcome]
}

runIfMain(import.meta.url, kitWatchBenchmark, RESULTS)
