/**
 * What each member event type is called in words and which placeholders its data can fill. One
 * definition, read by the server's mapping validation and by the panel's event cards and rules.
 */
import { placeholderPaths, type EventType } from './events.ts'

/** The words an owner reads for each event type; the type itself is shown beside them. */
export const EVENT_TITLES: Record<EventType, string> = {
  'user.signed_up': 'Member signs up',
  'user.updated': 'Member updates their profile',
  'user.deleted': 'Member account is deleted',
  'subscription.started': 'Subscription starts',
  'subscription.canceled': 'Subscription is cancelled',
  'access.granted': 'Access level is granted',
  'access.revoked': 'Access level is revoked',
  'member.snapshot': 'Existing member is brought over (initial sync)',
}

/** Events of a type counted in words ("500 sign-ups"): the noun for one, and for more than one. */
export const EVENT_COUNT_NOUNS: Record<EventType, { one: string; other: string }> = {
  'user.signed_up': { one: 'sign-up', other: 'sign-ups' },
  'user.updated': { one: 'profile update', other: 'profile updates' },
  'user.deleted': { one: 'account deletion', other: 'account deletions' },
  'subscription.started': { one: 'subscription start', other: 'subscription starts' },
  'subscription.canceled': { one: 'subscription cancellation', other: 'subscription cancellations' },
  'access.granted': { one: 'access level granted', other: 'access levels granted' },
  'access.revoked': { one: 'access level revoked', other: 'access levels revoked' },
  'member.snapshot': { one: 'member from the import', other: 'members from the import' },
}

/** A placeholder family: `member.fields.mk_…` stands for every member field. */
export type PlaceholderRoot = 'access.level' | 'subscription.plan' | 'member.fields'

/**
 * The placeholders each event type carries: every event holds the member (and so their fields),
 * `subscription.*` events hold the subscription, `access.*` events the access level, and a snapshot
 * may hold both.
 */
export const EVENT_PLACEHOLDERS: Record<EventType, readonly PlaceholderRoot[]> = {
  'user.signed_up': ['member.fields'],
  'user.updated': ['member.fields'],
  'user.deleted': ['member.fields'],
  'subscription.started': ['subscription.plan', 'member.fields'],
  'subscription.canceled': ['subscription.plan', 'member.fields'],
  'access.granted': ['access.level', 'member.fields'],
  'access.revoked': ['access.level', 'member.fields'],
  'member.snapshot': ['subscription.plan', 'access.level', 'member.fields'],
}

const rootOf = (path: string): PlaceholderRoot | null => {
  if (path === 'access.level' || path === 'subscription.plan') return path
  if (path.startsWith('member.fields.')) return 'member.fields'
  return null
}

/** How a placeholder family is written in a tag name, for messages. */
export const placeholderExample = (root: PlaceholderRoot) => (root === 'member.fields' ? '{{member.fields.mk_…}}' : `{{${root}}}`)

/**
 * The first known placeholder in a tag name that events of this type never carry (e.g.
 * `subscription.plan` on `user.signed_up`), without braces, or null. Unknown placeholders are
 * another rule's business.
 */
export function placeholderNotCarried(type: EventType, name: string): string | null {
  return (
    placeholderPaths(name).find((path) => {
      const root = rootOf(path)
      return root !== null && !EVENT_PLACEHOLDERS[type].includes(root)
    }) ?? null
  )
}

/** The end of the message for a placeholder an event type does not carry. */
export function notCarriedProblem(type: EventType, path: string): string {
  const carried = EVENT_PLACEHOLDERS[type].map(placeholderExample).join(' or ')
  return `{{${path}}} is never filled for ${type}, so the tag would never be applied; use ${carried}`
}
