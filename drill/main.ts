/**
 * `npm run drill` runs every fault drill; `npm run drill -- kill9 garbage` runs only those named
 * (kill9, blackout, revoke, garbage, receiver). Each prints a final RESULT line; a summary closes the run.
 */
import { log, runIfMain, type Outcome } from '../bench/lib/report.ts'
import { blackoutDrill } from './blackout.ts'
import { RESULTS } from './common.ts'
import { garbageDrill } from './garbage.ts'
import { kill9Drill } from './kill9.ts'
import { receiverDrill } from './receiver.ts'
import { revokeDrill } from './revoke.ts'

const DRILLS: Record<string, () => Promise<Outcome>> = {
  kill9: kill9Drill,
  blackout: blackoutDrill,
  revoke: revokeDrill,
  garbage: garbageDrill,
  receiver: receiverDrill,
}

async function main(): Promise<Outcome[]> {
  const names = process.argv.slice(2)
  const unknown = names.filter((n) => !(n in DRILLS))
  if (unknown.length) throw new Error(`unknown drill ${unknown.join(', ')}; choose from ${Object.keys(DRILLS).join(', ')}`)
  const chosen = names.length ? names : Object.keys(DRILLS)
  const started = Date.now()
  const outcomes: Outcome[] = []
  for (const name of chosen) {
    log(`\n=== drill: ${name} ===`)
    outcomes.push(await (DRILLS[name] as () => Promise<Outcome>)())
  }
  log(`\n=== drills summary (${Math.round((Date.now() - started) / 1000)} s) ===`)
  for (const o of outcomes) log(`${o.status === 'pass' ? 'OK     ' : 'PROBLEM'} ${o.name.padEnd(9)} ${o.verdict}`)
  return outcomes
}

runIfMain(import.meta.url, main, RESULTS)
