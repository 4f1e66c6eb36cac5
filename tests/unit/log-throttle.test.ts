import { describe, expect, it } from 'vitest'
import { LogThrottle } from '../../server/lib/log-throttle.ts'

describe('LogThrottle', () => {
  it('writes one line per interval and counts the lines left out meanwhile', () => {
    let now = 1_000
    const throttle = new LogThrottle(10_000, () => now)
    expect(throttle.take()).toBe(0)
    for (let i = 0; i < 499; i++) expect(throttle.take()).toBeNull()
    now += 9_999
    expect(throttle.take()).toBeNull()
    now += 1
    expect(throttle.take()).toBe(500)
    now += 10_000
    expect(throttle.take()).toBe(0)
  })

  it('gives the count of lines left out once on drain', () => {
    let now = 0
    const throttle = new LogThrottle(1_000, () => now)
    throttle.take()
    throttle.take()
    throttle.take()
    expect(throttle.drain()).toBe(2)
    expect(throttle.drain()).toBe(0)
    now += 1_000
    expect(throttle.take()).toBe(0)
  })
})
