/**
 * Erasure, as far as Kit's API allows and locally. Kit's v4 API cannot delete a subscriber: an
 * erasing `user.deleted` unsubscribes them, empties every mapped field and removes every mapped
 * tag (see the planner), and the owner deletes them in Kit's app, through the link built here.
 *
 * Locally, once a deleted member's last delivery settled, what the plugin kept of them is purged:
 * the subscriber it last wrote, what it last saw in Kit, and the personal data in their finished
 * deliveries and stored events. What the ordering guard needs stays: the event ids (duplicates are
 * still recognised), types and times, the ordering marks (scopes of member, subscription and
 * access-level ids, no email or name) and each delivery's steps with addresses and names blanked.
 */
import type { DeliveryStep } from '#shared/api.ts'
import type { MemberEvent } from './envelope.ts'

/** Where the owner deletes a subscriber by hand: the subscriber's page in Kit's app. */
export const kitSubscriberUrl = (subscriberId: number) => `https://app.kit.com/subscribers/${subscriberId}`

/** What stands in a delivery's words where an address or name was. */
export const ERASED_TEXT = '[erased]'

/** A stored event whose personal data was purged: its member has an empty address (intake never accepts one). */
export const isErasedEvent = (event: MemberEvent): boolean => event.data?.member?.email === ''

/** What is left of a stored event once its member's personal data is purged: who and what it was, no more. */
export function erasedPayload(e: { eventId: string; type: string; communityId: string; memberId: string }): string {
  return JSON.stringify({
    specversion: '1.0',
    id: e.eventId,
    source: '',
    type: e.type,
    communityid: e.communityId,
    subject: `members/${e.memberId}`,
    data: { member: { id: e.memberId, email: '' } },
  })
}

/** The addresses and first names a stored event carries for its member. */
export function personalDataOf(payload: string): { emails: string[]; names: string[] } {
  let event: Partial<MemberEvent>
  try {
    event = JSON.parse(payload) as Partial<MemberEvent>
  } catch {
    return { emails: [], names: [] }
  }
  const member = event.data?.member
  const email = typeof member?.email === 'string' ? member.email.trim() : ''
  const name = typeof member?.first_name === 'string' ? member.first_name.trim() : ''
  return { emails: email ? [email] : [], names: name ? [name] : [] }
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Anything shaped like an email address: a delivery's words speak of one member only, so every one is theirs. */
const ANY_EMAIL = /[^\s@"'<>(),;:[\]]+@[^\s@"'<>(),;:[\]]+\.[^\s@"'<>(),;:[\].]+/gu

/**
 * Blanks a member's personal data in a delivery's words: every address (the known ones in any
 * case, and anything shaped like one) and each known first name as a whole word, as written.
 */
export function redactor(known: { emails: Iterable<string>; names: Iterable<string> }): (text: string | null) => string | null {
  const emails = [...new Set([...known.emails].filter((e) => e !== ''))].sort((a, b) => b.length - a.length)
  const names = [...new Set([...known.names].filter((n) => n.length >= 2))].sort((a, b) => b.length - a.length)
  const knownEmails = emails.length ? new RegExp(emails.map(escape).join('|'), 'giu') : null
  const knownNames = names.length ? new RegExp(`(?<![\\p{L}\\p{N}])(?:${names.map(escape).join('|')})(?![\\p{L}\\p{N}])`, 'gu') : null
  return (text) => {
    if (text === null) return null
    let out = knownEmails ? text.replace(knownEmails, ERASED_TEXT) : text
    out = out.replace(ANY_EMAIL, ERASED_TEXT)
    return knownNames ? out.replace(knownNames, ERASED_TEXT) : out
  }
}

/** A delivery's steps (JSON, as stored) with the member's personal data blanked. */
export function redactSteps(steps: string, redact: (text: string | null) => string | null): string {
  let parsed: DeliveryStep[]
  try {
    parsed = JSON.parse(steps) as DeliveryStep[]
  } catch {
    return '[]'
  }
  if (!Array.isArray(parsed)) return '[]'
  return JSON.stringify(parsed.map((s) => ({ ...s, target: redact(s.target ?? null), detail: redact(s.detail ?? null) })))
}
