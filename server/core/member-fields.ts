/**
 * The member-field and template rules, defined once for the planner, the processor and the import
 * preview: which `mk_*` values an event carries, which of them are mapped, how a templated tag
 * name is filled in, and the ordering scope an event belongs to.
 */
import { LIMITS, type Mappings } from '#shared/api.ts'
import { fillPlaceholders } from '#shared/events.ts'
import type { MemberEvent } from './envelope.ts'
import { snapshotFieldValues } from './snapshot.ts'

/**
 * Fills `{{access.level}}`, `{{subscription.plan}}`, `{{member.fields.mk_x}}` from the event; each
 * value loses its control characters and is cut to 100 characters, so a member's own field can
 * never turn a tag name into something long or strange. null when a value is missing.
 */
export function fillTemplate(name: string, event: MemberEvent): string | null {
  const filled = fillPlaceholders(name, (path) => {
    if (path === 'access.level') return event.data.access?.level
    if (path === 'subscription.plan') return event.data.subscription?.plan
    if (path.startsWith('member.fields.')) return event.data.member.fields?.[path.slice('member.fields.'.length)]
    return null
  })
  return filled === null ? null : Array.from(filled).slice(0, LIMITS.tagNameMax).join('').trim()
}

/** The ordering scope an event belongs to: an older event never undoes a newer one in the same scope. */
export function orderingScope(event: MemberEvent): string | null {
  if (event.type.startsWith('subscription.') && event.data.subscription?.id) return `subscription:${event.data.subscription.id}`
  if (event.type.startsWith('access.') && event.data.access?.level) return `access:${event.data.member.id}:${event.data.access.level}`
  return null
}

/**
 * The member's `mk_*` values an event carries: the member's own fields, and where those do not
 * carry them, `mk_subscription_plan` from the plan of a started subscription
 * (`data.subscription.plan` of subscription.started) and `mk_access_level` from a granted level
 * (`data.access.level` of access.granted). Cancellations and revocations fill nothing: the plan
 * or level they name is the one the member no longer has.
 */
export function memberFieldValues(
  event: MemberEvent,
  { skip = new Set<string>() }: { skip?: ReadonlySet<string> } = {},
): Record<string, string | null> {
  const own = Object.fromEntries(Object.entries(event.data.member.fields ?? {}).filter(([source]) => !skip.has(source)))
  if (event.type === 'member.snapshot') return snapshotFieldValues(event, own)
  const given: Record<string, string | null> = { ...own }
  const carried = event.data.member.fields ?? {}
  const plan = event.data.subscription?.plan
  if (
    event.type === 'subscription.started' &&
    !('mk_subscription_plan' in carried) &&
    !skip.has('mk_subscription_plan') &&
    typeof plan === 'string' &&
    plan.trim() !== ''
  ) {
    given.mk_subscription_plan = plan
  }
  const level = event.data.access?.level
  if (
    event.type === 'access.granted' &&
    !('mk_access_level' in carried) &&
    !skip.has('mk_access_level') &&
    typeof level === 'string' &&
    level.trim() !== ''
  ) {
    given.mk_access_level = level
  }
  return given
}

/**
 * The mapped `mk_*` fields the event carries, keyed by source; an emptied field becomes "".
 * `skip` leaves out the fields a newer applied event already wrote, whether the member's own or
 * filled from the event's subscription or access level.
 */
export function mappedFields(
  mappings: Mappings,
  event: MemberEvent,
  options: { skip?: ReadonlySet<string> } = {},
): Record<string, { key: string; label: string; value: string }> {
  const out: Record<string, { key: string; label: string; value: string }> = {}
  const given = memberFieldValues(event, options)
  for (const f of mappings.fields) {
    if (!(f.source in given)) continue
    out[f.source] = { key: f.kit_field.key, label: f.kit_field.label, value: given[f.source] ?? '' }
  }
  return out
}
