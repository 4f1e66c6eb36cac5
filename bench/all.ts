/** `npm run bench`: every benchmark in turn (intake also gives the footprint), then a summary. */
import { drainBenchmark } from './drain.ts'
import { economyBenchmark } from './economy.ts'
import { fairnessBenchmark } from './fairness.ts'
import { intakeBenchmark, RESULTS } from './intake.ts'
import { panelBenchmark } from './panel.ts'
import { log, runIfMain, type Outcome } from './lib/report.ts'

const BENCHMARKS: [string, () => Promise<Outcome[]>][] = [
  ['intake + footprint', intakeBenchmark],
  ['economy', economyBenchmark],
  ['panel', panelBenchmark],
  ['fairness', fairnessBenchmark],
  ['drain', drainBenchmark],
]

async function all(): Promise<Outcome[]> {
  const started = Date.now()
  const outcomes: Outcome[] = []
  for (const [name, run] of BENCHMARKS) {
    log(`\n=== ${name} ===`)
    outcomes.push(...(await run()))
  }
  log(`\n=== summary (${Math.round((Date.now() - started) / 1000)} s) ===`)
  for (const o of outcomes) log(`${o.status.toUpperCase().padEnd(7)} ${o.name.padEnd(13)} ${o.verdict}  [goal: ${o.goal}]`)
  return outcomes
}

runIfMain(import.meta.url, all, RESULTS)
