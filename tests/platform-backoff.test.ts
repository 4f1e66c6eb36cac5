/** When an event to the platform is tried again: pure functions of the attempt, the clock and chance. */
import { describe, expect, it } from 'vitest'
import { GIVE_UP_AFTER_MS } from '../server/pipeline/platform-events.ts'
import { afterFailure, DEFAULT_PLATFORM_BACKOFF, platformRetryDelay } from '../server/pipeline/platform-outbox.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** Every attempt of an event that never gets through: when each one happens, from its creation. */
function schedule(random: number): number[] {
  const created = 0
  let event = { attempts: 0, giveUpAt: created + GIVE_UP_AFTER_MS }
  let now = created
  const attempts = [now]
  for (;;) {
    const outcome = afterFailure(event, 'http_503', now, DEFAULT_PLATFORM_BACKOFF, random)
    if (outcome.state !== 'pending') return attempts
    now = outcome.nextAttemptAt
    attempts.push(now)
    event = { ...event, attempts: event.attempts + 1 }
  }
}

describe('the backoff of events to the platform', () => {
  it('doubles from 10 seconds up to an hour, jittered between half and all of that', () => {
    expect([1, 2, 3, 4, 9, 10, 40].map((n) => platformRetryDelay(DEFAULT_PLATFORM_BACKOFF, n, 0.9999999))).toEqual([
      10_000,
      20_000,
      40_000,
      80_000,
      2_560_000,
      HOUR,
      HOUR,
    ])
    expect(platformRetryDelay(DEFAULT_PLATFORM_BACKOFF, 1, 0)).toBe(5_000)
    expect(platformRetryDelay(DEFAULT_PLATFORM_BACKOFF, 40, 0)).toBe(HOUR / 2)
  })

  it('keeps retrying for at least 72 hours, whatever the jitter, and gives up within the hour after', () => {
    for (const random of [0, 0.5, 0.9999999]) {
      const attempts = schedule(random)
      const last = attempts.at(-1)!
      expect(last, `random ${random}`).toBeGreaterThanOrEqual(GIVE_UP_AFTER_MS)
      expect(last, `random ${random}`).toBeLessThan(GIVE_UP_AFTER_MS + HOUR)
      // Waits never shrink, and never exceed an hour: the platform is asked about once an hour at worst.
      const waits = attempts.slice(1).map((t, i) => t - attempts[i]!)
      expect(Math.max(...waits)).toBeLessThanOrEqual(HOUR)
      if (random === 0.9999999) expect(waits).toEqual([...waits].sort((a, b) => a - b))
    }
    expect(schedule(0.9999999).length).toBeGreaterThan(70)
    expect(schedule(0).length).toBeLessThan(170)
  })

  it('gives up at the first failed attempt after the deadline, keeping the failure’s code', () => {
    expect(afterFailure({ attempts: 80, giveUpAt: 1000 }, 'timeout', 1000, DEFAULT_PLATFORM_BACKOFF, 0.5)).toEqual({
      state: 'failed',
      lastError: 'timeout',
    })
    expect(afterFailure({ attempts: 80, giveUpAt: 1000 }, 'network', 999, DEFAULT_PLATFORM_BACKOFF, 0)).toEqual({
      state: 'pending',
      lastError: 'network',
      nextAttemptAt: 999 + HOUR / 2,
    })
  })
})
