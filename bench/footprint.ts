/**
 * Benchmark 5 — footprint: resident memory (VmRSS from /proc/<pid>/status) of the server process
 * at idle, under the intake load of benchmark 1 (sampled every 250 ms) and 5 s after it.
 * `npm run bench:intake` reports the same figures; this runs only the server half of it.
 */
import { envInt } from './lib/env.ts'
import { printOutcome, runIfMain, type Outcome } from './lib/report.ts'
import { footprintOutcome, RESULTS, serverIntake } from './intake.ts'

export async function footprintBenchmark(): Promise<Outcome[]> {
  const real = await serverIntake(envInt('BENCH_INTAKE_SECONDS', 10) * 1000, false)
  const outcome = footprintOutcome(real)
  printOutcome(outcome)
  return [outcome]
}

runIfMain(import.meta.url, footprintBenchmark, RESULTS)
