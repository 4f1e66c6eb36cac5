/**
 * Benchmark — the shared Kit budget's cost: what a ledger take adds to every Kit request, and how
 * many takes one credential sustains when three instances (three pools) ask at once. Needs
 * PostgreSQL (TEST_POSTGRES_URL, default 127.0.0.1:5432); reported only, no goal.
 *
 * BENCH_LEDGER_SECONDS (default 5) is the length of the throughput run.
 */
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { envInt, round } from './lib/env.ts'
import { log, printOutcome, runIfMain, type Outcome } from './lib/report.ts'
import { RESULTS } from './intake.ts'
import { openPostgres } from '../server/db/postgres.ts'
import { RequestBudget } from '../server/kit/budget.ts'
import { PgBudgetLedger } from '../server/storage/postgres/ledger.ts'
import { createTestDatabase } from '../tests/helpers/postgres.ts'

const SAMPLES = 2_000
const LOOPS_PER_INSTANCE = 5

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

/** ms per call of `run`, one at a time, after a warm-up. */
async function latency(run: () => Promise<void>): Promise<{ p50: number; p95: number }> {
  for (let i = 0; i < 100; i += 1) await run()
  const times: number[] = []
  for (let i = 0; i < SAMPLES; i += 1) {
    const started = performance.now()
    await run()
    times.push(performance.now() - started)
  }
  times.sort((a, b) => a - b)
  return { p50: round(percentile(times, 0.5), 3), p95: round(percentile(times, 0.95), 3) }
}

export async function ledgerBenchmark(): Promise<Outcome[]> {
  const seconds = envInt('BENCH_LEDGER_SECONDS', 5)
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  try {
    database = await createTestDatabase('kitbench')
  } catch (error) {
    const outcome: Outcome = {
      name: 'ledger',
      figures: {},
      goal: 'reported',
      status: 'skipped',
      verdict: `PostgreSQL not reachable (${error instanceof Error ? error.message : String(error)})`,
    }
    printOutcome(outcome)
    return [outcome]
  }
  const pools: pg.Pool[] = []
  try {
    for (let i = 0; i < 3; i += 1) pools.push((await openPostgres(database.url, { poolSize: LOOPS_PER_INSTANCE })).pool)
    const [pool] = pools
    if (!pool) throw new Error('no pool')
    const ledger = new PgBudgetLedger(pool)

    // One caller: a take that is granted, then the done the release sends (off the request's path).
    let n = 0
    const take = await latency(async () => {
      const taken = await ledger.take(`cred_latency_${n++ % 50}`, 1_000_000, 1)
      if ('ticket' in taken) await ledger.done(taken.ticket)
    })
    const local = new RequestBudget({ limit: 1_000_000, windowMs: 1 })
    const shared = new RequestBudget({ limit: 1_000_000, windowMs: 1, ledger })
    const slot = (budget: RequestBudget) => async () => {
      const s = await budget.tryAcquire('cred_slot', 'background')
      if ('release' in s) s.release()
    }
    const withoutLedger = await latency(slot(local))
    const withLedger = await latency(slot(shared))
    log(`take + done, one caller: p50 ${take.p50} ms, p95 ${take.p95} ms`)
    log(`tryAcquire + release: ${withoutLedger.p50} ms alone, ${withLedger.p50} ms with the ledger (p95 ${withLedger.p95} ms)`)

    // Three instances on one credential at Kit's real limit: takes granted, refused, and their rate.
    const ledgers = pools.map((p) => new PgBudgetLedger(p))
    let granted = 0
    let refused = 0
    const stopAt = performance.now() + seconds * 1000
    const hammer = async (l: PgBudgetLedger): Promise<void> => {
      while (performance.now() < stopAt) {
        const taken = await l.take('cred_throughput', 120, 1000)
        if ('ticket' in taken) {
          granted += 1
          await l.done(taken.ticket)
        } else {
          refused += 1
        }
      }
    }
    await Promise.all(ledgers.flatMap((l) => Array.from({ length: LOOPS_PER_INSTANCE }, () => hammer(l))))
    const takesPerSecond = round((granted + refused) / seconds, 0)
    log(
      `3 pools × ${LOOPS_PER_INSTANCE} callers, one credential: ${takesPerSecond} takes/s (${round(granted / seconds, 1)} granted/s at 120 per 1 s)`,
    )

    const outcome: Outcome = {
      name: 'ledger',
      figures: {
        take_done_p50_ms: take.p50,
        take_done_p95_ms: take.p95,
        slot_p50_ms_without_ledger: withoutLedger.p50,
        slot_p50_ms_with_ledger: withLedger.p50,
        slot_p95_ms_with_ledger: withLedger.p95,
        takes_per_second_one_credential_3_pools: takesPerSecond,
        granted_per_second: round(granted / seconds, 1),
      },
      goal: 'reported',
      status: 'info',
      verdict: `a take adds ~${round(withLedger.p50 - withoutLedger.p50, 2)} ms per Kit request; ${takesPerSecond} takes/s for one credential`,
    }
    printOutcome(outcome)
    return [outcome]
  } finally {
    await Promise.all(pools.map((p) => p.end()))
    await database.drop()
  }
}

runIfMain(import.meta.url, ledgerBenchmark, RESULTS)
