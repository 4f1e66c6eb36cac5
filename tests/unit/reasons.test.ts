import { describe, expect, it } from 'vitest'
import { isReasonCode, REASON_CODES, reasonWords } from '../../server/core/reasons.ts'

describe('reason codes', () => {
  it('has words for every code, each a sentence of its own', () => {
    const named = {
      eventType: 'user.deleted',
      eventId: 'evt_1',
      scope: 'subscription s_1',
      email: 'a@example.com',
      window: '5 minutes',
      message: 'HTTP 503',
      until: '10:42:05 UTC',
      budget: '120 requests a minute',
    }
    const words = REASON_CODES.map((code) => reasonWords(code, named))
    for (const text of words) expect(text).toMatch(/^\S.*[.]$/)
    expect(new Set(words).size).toBe(REASON_CODES.length)
  })

  it('fills in what the delivery names', () => {
    expect(reasonWords('stale_event', { eventId: 'evt_9', scope: 'subscription s_1' })).toContain('evt_9')
    expect(reasonWords('stale_event', { eventId: 'evt_9', scope: 'subscription s_1' })).toContain('subscription s_1')
    expect(reasonWords('list_lag', { email: 'a@example.com', window: '5 minutes' })).toContain('a@example.com')
    expect(reasonWords('kit_unavailable', { message: 'HTTP 503' })).toContain('HTTP 503')
  })

  it('says a delivery was given up before quoting the last try, whose words still speak of retrying', () => {
    const last = reasonWords('kit_unavailable', { message: 'HTTP 503' })
    const words = reasonWords('retries_exhausted', { message: last })
    expect(words.startsWith('Gave up after retrying for a day.')).toBe(true)
    expect(words).toContain(last)
  })

  it('tells a code from any other text', () => {
    expect(REASON_CODES.every(isReasonCode)).toBe(true)
    expect(isReasonCode('No Kit account is connected')).toBe(false)
    expect(isReasonCode(null)).toBe(false)
  })
})
