import { describe, expect, it } from 'vitest'
import { erasedPayload, isErasedEvent, kitSubscriberUrl, personalDataOf, redactor, redactSteps } from '../../server/core/erasure.ts'
import type { MemberEvent } from '../../server/core/envelope.ts'

describe('erasure', () => {
  it("links to the subscriber's page in Kit's app", () => {
    expect(kitSubscriberUrl(1013)).toBe('https://app.kit.com/subscribers/1013')
  })

  it('blanks known addresses in any case, anything shaped like one, and known names as whole words only', () => {
    const redact = redactor({ emails: ['ada@example.com'], names: ['Ada', 'X'] })
    expect(redact('ADA@Example.com unconfirmed; Email changed from old.ada@mail.example.org.')).toBe(
      '[erased] unconfirmed; Email changed from [erased].',
    )
    expect(redact('Kit said "Ada" is not Adaptive, nor Adam.')).toBe('Kit said "[erased]" is not Adaptive, nor Adam.')
    expect(redact('X marks a one-letter name: kept.')).toBe('X marks a one-letter name: kept.')
    expect(redact(null)).toBeNull()
  })

  it("blanks a delivery's step targets and details, and copes with what is not a list", () => {
    const redact = redactor({ emails: ['ada@example.com'], names: [] })
    const steps = JSON.stringify([
      { action: 'subscriber.created', target: 'ada@example.com', detail: null },
      { action: 'tag.added', target: 'VIP', detail: null },
    ])
    expect(JSON.parse(redactSteps(steps, redact))).toEqual([
      { action: 'subscriber.created', target: '[erased]', detail: null },
      { action: 'tag.added', target: 'VIP', detail: null },
    ])
    expect(redactSteps('not json', redact)).toBe('[]')
    expect(redactSteps('{}', redact)).toBe('[]')
  })

  it('keeps of an event only who and what it was, and tells such an event apart', () => {
    const payload = erasedPayload({ eventId: 'evt_1', type: 'user.updated', communityId: 'c_1', memberId: 'm_1' })
    const event = JSON.parse(payload) as MemberEvent
    expect(isErasedEvent(event)).toBe(true)
    expect(personalDataOf(payload)).toEqual({ emails: [], names: [] })
    expect(personalDataOf(JSON.stringify({ data: { member: { id: 'm_1', email: ' Ada@Example.com ', first_name: 'Ada' } } }))).toEqual({
      emails: ['Ada@Example.com'],
      names: ['Ada'],
    })
    expect(personalDataOf('{')).toEqual({ emails: [], names: [] })
  })
})
