/** Member event types the platform dispatches and what each means to an owner. */
export const EVENT_TYPES = [
  'user.signed_up',
  'user.updated',
  'user.deleted',
  'subscription.started',
  'subscription.canceled',
  'access.granted',
  'access.revoked',
  'member.snapshot',
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
  'member.snapshot': 'An existing member brought over by an initial sync (or pushed by the platform as they are now).',
}

/**
 * The subscription statuses a snapshot may carry. Active ones apply the subscription.started
 * mapping's tags (and fill mk_subscription_plan from the plan); ended ones apply the
 * subscription.canceled mapping's tags.
 */
export const ACTIVE_SUBSCRIPTION_STATUSES = ['active', 'trialing', 'past_due'] as const
export const ENDED_SUBSCRIPTION_STATUSES = ['canceled', 'cancelled', 'expired'] as const

export function subscriptionStatusKind(status: string | null | undefined): 'active' | 'ended' | 'none' | 'unknown' {
  if (status === undefined || status === null || status.trim() === '') return 'none'
  const s = status.trim().toLowerCase()
  if ((ACTIVE_SUBSCRIPTION_STATUSES as readonly string[]).includes(s)) return 'active'
  if ((ENDED_SUBSCRIPTION_STATUSES as readonly string[]).includes(s)) return 'ended'
  return 'unknown'
}

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value)
}

/**
 * Placeholders a tag name may hold; each is filled from the event before the tag is applied.
 * No nested quantifiers, so matching stays cheap whatever the name holds; spaces inside the
 * braces are trimmed away.
 */
const PLACEHOLDER = /\{\{([^}]*)\}\}/g
const KNOWN_PLACEHOLDER = /^(access\.level|subscription\.plan|member\.fields\.mk_[a-z0-9_]+)$/
/** C0 and C1 control characters (newlines, escapes, NUL…), which never belong in a tag name. */
const CONTROL_CHARACTERS = /\p{Cc}/gu

/** The most characters one filled-in placeholder contributes to a tag name. */
export const PLACEHOLDER_VALUE_MAX = 100

/** Every `{{…}}` of a tag name, in order, without braces and trimmed. */
export function placeholderPaths(name: string): string[] {
  return Array.from(name.matchAll(PLACEHOLDER), (match) => (match[1] ?? '').trim())
}

/** The first `{{…}}` in a tag name that is not a known placeholder (without braces, trimmed), or null. */
export function unknownPlaceholder(name: string): string | null {
  return placeholderPaths(name).find((path) => !KNOWN_PLACEHOLDER.test(path)) ?? null
}

/** True when the name opens a `{{` that no `}}` closes. */
export function hasUnclosedPlaceholder(name: string): boolean {
  return name.replace(PLACEHOLDER, '').includes('{{')
}

/** True when the name holds at least one `{{…}}` placeholder. */
export function hasPlaceholder(name: string): boolean {
  return name.replace(PLACEHOLDER, '') !== name
}

/**
 * A placeholder's value as it may appear in a tag name: control characters removed, trimmed,
 * at most PLACEHOLDER_VALUE_MAX characters. Empty when nothing usable is left.
 */
export function cleanPlaceholderValue(value: string): string {
  const cleaned = value.replace(CONTROL_CHARACTERS, '').trim()
  return Array.from(cleaned).slice(0, PLACEHOLDER_VALUE_MAX).join('').trim()
}

/**
 * Fills every `{{path}}` with `valueOf(path)` (the path trimmed), each value cleaned by
 * cleanPlaceholderValue. null when a placeholder has no usable value.
 */
export function fillPlaceholders(name: string, valueOf: (path: string) => string | null | undefined): string | null {
  let missing = false
  const filled = name.replace(PLACEHOLDER, (_match, path: string) => {
    const raw = valueOf(path.trim())
    const value = typeof raw === 'string' ? cleanPlaceholderValue(raw) : ''
    if (value === '') missing = true
    return value
  })
  return missing ? null : filled.trim()
}
