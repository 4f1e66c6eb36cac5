/**
 * `npm run drill:cluster` runs the fault drills against three instances sharing one PostgreSQL
 * database and one JetStream consumer; `npm run drill:cluster -- kill9 burst` runs only those named. Each prints a RESULT line;
 * a summary closes the run and the results are merged into drill/results.json.
 */
import { log, runIfMain, type Outcome } from '../bench/lib/report.ts'
import { clusterBlackoutDrill } from './cluster/blackout.ts'
import { clusterBurstDrill } from './cluster/burst.ts'
import { clusterGarbageDrill } from './cluster/garbage.ts'
import { clusterKill9Drill } from './cluster/kill9.ts'
import { clusterRevokeDrill } from './cluster/revoke.ts'
import { RESULTS } from './common.ts'

const DRILLS: Record<string, () => Promise<Outcome>> = {
  kill9: clusterKill9Drill,
  blackout: clusterBlackoutDrill,
  revoke: clusterRevokeDrill,
  garbage: clusterGarbageDrill,
  burst: clusterBurstDrill,
}

async function main(): Promise<Outcome[]> {
  const names = process.argv.slice(2)
  const unknown = names.filter((n) => !(n in DRILLS))
  if (unknown.length) throw new Error(`unknown drill ${unknown.join(', ')}; choose from ${Object.keys(DRILLS).join(', ')}`)
  const chosen = names.length ? names : Object.keys(DRILLS)
  log(`cluster drills on PostgreSQL: ${chosen.join(', ')}`)
  const started = Date.now()
  const outcomes: Outcome[] = []
  for (const name of chosen) {
    log(`\n=== cluster drill: ${name} ===`)
    outcomes.push(await (DRILLS[name] as () => Promise<Outcome>)())
  }
  log(`\n=== cluster drills summary (${Math.round((Date.now() - started) / 1000)} s) ===`)
  for (const o of outcomes) log(`${o.status === 'pass' ? 'OK     ' : 'PROBLEM'} ${o.name.padEnd(16)} ${o.verdict}`)
  return outcomes
}

runIfMain(import.meta.url, main, RESULTS)
