/** Member event types the platform dispatches (CONTRACT §4) and what each means to an owner. */
export const EVENT_TYPES = [
  'user.signed_up',
  'user.updated',
  'user.deleted',
  'subscription.started',
  'subscription.canceled',
  'access.granted',
  'access.revoked',
] as const

export type EventType = (typeof EVENT_TYPES)[number]

export const EVENT_DESCRIPTIONS: Record<EventType, string> = {
  'user.signed_up': 'A person joins the community.',
  'user.updated': 'A member changes their name, email or profile fields.',
  'user.deleted': 'A member account is deleted.',
  'subscription.started': 'A member starts a paid subscription.',
  'subscription.canceled': 'A member cancels their subscription.',
  'access.granted': 'A member is given an access level.',
  'access.revoked': 'A member loses an access level.',
}

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value)
}

/** Placeholders a tag name may hold; each is filled from the event before the tag is applied. */
const PLACEHOLDER = /\{\{([^}]*)\}\}/g
const KNOWN_PLACEHOLDER = /^\s*(access\.level|subscription\.plan|member\.fields\.mk_[a-z0-9_]+)\s*$/

/** The first `{{…}}` in a tag name that is not a known placeholder (without braces), or null. */
export function unknownPlaceholder(name: string): string | null {
  for (const match of name.matchAll(PLACEHOLDER)) {
    if (!KNOWN_PLACEHOLDER.test(match[1] ?? '')) return match[1] ?? ''
  }
  return null
}
