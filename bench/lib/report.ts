/** Printing figures and verdicts, and keeping every run's results in a JSON file beside the scripts. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Outcome {
  /** e.g. "intake" */
  name: string
  figures: Record<string, unknown>
  goal: string
  /** `info` for figures without a goal; `skipped` when the run could not take place. */
  status: 'pass' | 'fail' | 'info' | 'skipped'
  verdict: string
}

export const log = (message: string) => process.stdout.write(`${message}\n`)

export const verdictOf = (pass: boolean): Outcome['status'] => (pass ? 'pass' : 'fail')

export function printOutcome(outcome: Outcome): void {
  log(`verdict [${outcome.name}]: ${outcome.status.toUpperCase()} — ${outcome.verdict} (goal: ${outcome.goal})`)
}

/** Merges the outcome into `file` under its name, with when and where it was measured. */
export function saveOutcome(file: string, outcome: Outcome): void {
  const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {}
  all[outcome.name] = {
    measured_at: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown' },
    ...outcome,
  }
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`)
}

/** Runs `main` when the file is executed directly (not imported), exiting non-zero on a failure or crash. */
export function runIfMain(moduleUrl: string, main: () => Promise<Outcome[]>, file: string): void {
  const entry = process.argv[1]
  if (!entry || resolve(entry) !== fileURLToPath(moduleUrl)) return
  main().then(
    (outcomes) => {
      for (const outcome of outcomes) saveOutcome(file, outcome)
      log(`results written to ${file}`)
      process.exit(outcomes.some((o) => o.status === 'fail') ? 1 : 0)
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exit(2)
    },
  )
}
