import { describe, expect, it } from 'vitest'
import { backoffDelay, defaultRetryPolicy, nextListLookup, retriesExpired } from '../server/core/retry-policy.ts'

const policy = defaultRetryPolicy(60_000)

describe('retry policy', () => {
  it('backs off from 5 s, doubling per attempt up to 30 minutes, jittered to between half and all of it', () => {
    expect(backoffDelay(policy, 0, 0)).toBe(2_500)
    expect(backoffDelay(policy, 0, 0.999999)).toBe(5_000)
    expect(backoffDelay(policy, 1, 0)).toBe(5_000)
    expect(backoffDelay(policy, 3, 0.5)).toBe(30_000)
    expect(backoffDelay(policy, 9, 0.5)).toBe(22.5 * 60_000)
    expect(backoffDelay(policy, 50, 0)).toBe(15 * 60_000)
  })

  it('gives up retrying a day after the event was received', () => {
    const receivedAt = 1_000_000
    expect(retriesExpired(policy, receivedAt, receivedAt + 24 * 60 * 60_000)).toBe(false)
    expect(retriesExpired(policy, receivedAt, receivedAt + 24 * 60 * 60_000 + 1)).toBe(true)
  })

  it('looks a subscriber up again 30 to 60 s later, doubling per lookup, while the event is less than 5 minutes old', () => {
    const receivedAt = 1_000_000
    expect(nextListLookup(policy, receivedAt, receivedAt, 0, 0)).toBe(receivedAt + 30_000)
    expect(nextListLookup(policy, receivedAt, receivedAt + 10_000, 0, 0.5)).toBe(receivedAt + 55_000)
    expect(nextListLookup(policy, receivedAt, receivedAt + 40_000, 1, 0.5)).toBe(receivedAt + 130_000)
    expect(nextListLookup(policy, receivedAt, receivedAt + 100_000, 2, 0)).toBe(receivedAt + 220_000)
  })

  it('takes one last look at the end of the 5 minutes, then gives up', () => {
    const receivedAt = 1_000_000
    expect(nextListLookup(policy, receivedAt, receivedAt + 280_000, 0, 0)).toBe(receivedAt + 300_000)
    expect(nextListLookup(policy, receivedAt, receivedAt + 200_000, 3, 0)).toBe(receivedAt + 300_000)
    expect(nextListLookup(policy, receivedAt, receivedAt + 300_000, 0, 0)).toBeNull()
    expect(nextListLookup(policy, receivedAt, receivedAt + 3_600_000, 0, 0)).toBeNull()
  })

  it('looks up at most five times over the whole window for someone Kit does not have', () => {
    const lookups = (random: number) => {
      let count = 1
      for (let at = nextListLookup(policy, 0, 0, 0, random); at !== null; at = nextListLookup(policy, 0, at, count - 1, random)) count += 1
      return count
    }
    expect(lookups(0)).toBe(5)
    expect(lookups(0.999999)).toBe(4)
  })
})
