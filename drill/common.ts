/** What every drill shares: its stack (stand-in + server), the accepted-event ledger and the final line. */
import { fileURLToPath } from 'node:url'
import type { StandinRequest } from '../tests/kit-standin/server.ts'
import type { MemberEvent } from '../bench/lib/events.ts'
import type { ServerHandle } from '../bench/lib/server.ts'
import { sleep } from '../bench/lib/env.ts'
import { log, type Outcome } from '../bench/lib/report.ts'

export const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url))

/** Every event a drill sent, with what the server said: accepted (202/200) or not answered yet. */
export class Ledger {
  private readonly state = new Map<string, { event: MemberEvent; answer: number }>()

  record(events: MemberEvent[], statuses: number[]): void {
    events.forEach((event, i) => {
      const answer = statuses[i] ?? 0
      const before = this.state.get(event.id)
      if (before && (before.answer === 202 || before.answer === 200)) return
      this.state.set(event.id, { event, answer })
    })
  }

  accepted(): MemberEvent[] {
    return [...this.state.values()].filter((e) => e.answer === 202 || e.answer === 200).map((e) => e.event)
  }

  unanswered(): MemberEvent[] {
    return [...this.state.values()].filter((e) => e.answer === 0).map((e) => e.event)
  }

  refused(): { event: MemberEvent; answer: number }[] {
    return [...this.state.values()].filter((e) => e.answer !== 0 && e.answer !== 202 && e.answer !== 200)
  }
}

/**
 * Kit calls made more than once for the same tag and subscriber — work redone after a crash or a
 * retry. Harmless (Kit's tag calls are idempotent) but worth knowing.
 */
export function repeatedTagCalls(requests: StandinRequest[]): number {
  const seen = new Map<string, number>()
  for (const r of requests) {
    if (!/^\/v4\/tags\/\d+\/subscribers\/\d+$/.test(r.path) || r.status < 200 || r.status >= 300) continue
    const key = `${r.method} ${r.path}`
    seen.set(key, (seen.get(key) ?? 0) + 1)
  }
  return [...seen.values()].reduce((n, c) => n + c - 1, 0)
}

/** Probes every 100 ms until `probe` gives a value other than null; throws after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null> | T | null): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== null) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
    await sleep(100)
  }
}

export function finish(outcome: Outcome): Outcome {
  log(`RESULT [${outcome.name}]: ${outcome.status === 'pass' ? 'OK' : 'PROBLEM'} — ${outcome.verdict}`)
  return outcome
}

/** Awaits `work`; when it fails, the error also carries the end of what the server logged. */
export async function withServerLog<T>(server: ServerHandle, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    const { child } = server.process
    const state = child.exitCode === null && child.signalCode === null ? 'still running' : `exited (${child.exitCode ?? child.signalCode})`
    const tail = server.process.output().trim().split('\n').slice(-15).join('\n')
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}\nthe server is ${state}; its log ends with:\n${tail || '(nothing at LOG_LEVEL=warn)'}`,
      { cause: err },
    )
  }
}
