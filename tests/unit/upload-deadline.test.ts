/**
 * The upload pace rule on its own clock: any schedule that puts the minimum in every window —
 * early, late, or alternating worst cases — never runs out, whatever the checks' timing; silence
 * runs out after the stall time; a trickle below the pace runs out although it is never silent.
 */
import { describe, expect, it } from 'vitest'
import type { SyncUploadPace } from '../../server/config.ts'
import { checkEveryMs, UploadDeadline } from '../../server/plugins/upload-pace.ts'

const PACE: SyncUploadPace = { minBytes: 16 * 1024, windowMs: 10_000, stallMs: 30_000 }

/** Runs the checks every `everyMs` over `durationMs`; `arrivals` are [time, bytes]. When it ran out, or null. */
function runOutTime(
  arrivals: [number, number][],
  durationMs: number,
  everyMs = checkEveryMs(PACE),
  serverBehind: (t: number) => boolean = () => false,
): number | null {
  const deadline = new UploadDeadline(PACE, 0)
  let next = 0
  for (let t = everyMs; t <= durationMs; t += everyMs) {
    let bytes = 0
    for (let arrival = arrivals[next]; arrival && arrival[0] <= t; arrival = arrivals[++next]) bytes += arrival[1]
    if (!deadline.check(t, bytes, serverBehind(t))) return t
  }
  return null
}

/** One burst of the minimum in each window, at the offset `within(k)` of window k. */
const bursts = (windows: number, within: (k: number) => number): [number, number][] =>
  Array.from({ length: windows }, (_, k) => [k * PACE.windowMs + within(k), PACE.minBytes])

describe('upload deadline', () => {
  it('checks ten times a window, at most once a second', () => {
    expect(checkEveryMs(PACE)).toBe(1000)
    expect(checkEveryMs({ ...PACE, windowMs: 500 })).toBe(50)
  })

  it('never runs out while the minimum arrives in every window, wherever in the window it comes', () => {
    const hour = 360
    const schedules: Record<string, (k: number) => number> = {
      'at the start': () => 0,
      'at the very end': () => PACE.windowMs - 1,
      'start, end, start, end': (k) => (k % 2 === 0 ? 0 : PACE.windowMs - 1),
      'end, start, end, start': (k) => (k % 2 === 0 ? PACE.windowMs - 1 : 0),
      drifting: (k) => (k * 1237) % PACE.windowMs,
    }
    for (const [name, within] of Object.entries(schedules)) {
      for (const everyMs of [1000, 333, 2500]) {
        expect(runOutTime(bursts(hour, within), hour * PACE.windowMs, everyMs), `${name}, checked every ${everyMs} ms`).toBeNull()
      }
    }
    // The same minimum spread evenly, in small pieces.
    const even: [number, number][] = Array.from({ length: 3600 }, (_, i) => [i * 1000, PACE.minBytes / 10])
    expect(runOutTime(even, 3600 * 1000)).toBeNull()
  })

  it('runs out the stall time after the last bytes, however much came before', () => {
    const fast: [number, number][] = Array.from({ length: 20 }, (_, i) => [i * 1000, 10 * 1024 * 1024])
    const out = runOutTime(fast, 120_000)
    expect(out).toBe(19_000 + PACE.stallMs)
    expect(runOutTime([], 120_000)).toBe(PACE.stallMs)
  })

  it('runs out for a trickle below the pace although it is never silent', () => {
    // A fifth of the minimum, every second.
    const trickle: [number, number][] = Array.from({ length: 600 }, (_, i) => [i * 1000, PACE.minBytes / 50])
    const out = runOutTime(trickle, 600_000)
    expect(out).not.toBeNull()
    expect(out as number).toBeLessThan(2 * PACE.stallMs)
  })

  it('does not hold against the client the time in which the server had not read what arrived', () => {
    // Nothing new arrives for a minute while the server works through what it holds.
    const busyServer = (t: number) => t > 5_000 && t <= 65_000
    expect(runOutTime([[0, PACE.minBytes]], 200_000)).toBeLessThanOrEqual(PACE.stallMs + PACE.windowMs)
    const out = runOutTime([[0, PACE.minBytes]], 200_000, 1000, busyServer)
    expect(out).toBeGreaterThan(65_000)
    expect(out).toBeLessThanOrEqual(65_000 + PACE.stallMs)
  })
})
