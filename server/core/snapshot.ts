/**
 * What a `member.snapshot` does, defined once for the processor and the dry-run planner.
 *
 * A snapshot is an existing member as they are at the sync's start. It creates or updates the
 * subscriber (email, first name, mapped `mk_*` fields) and applies the `member.snapshot` mapping
 * (empty by default: subscriber and fields only). On top of that it applies the tags — only the
 * tags, never forms, sequences or unsubscribe — of the mappings that describe the member's state:
 * - `subscription.started` when the subscription status is active, trialing or past_due;
 * - `subscription.canceled` when it is canceled, cancelled or expired;
 * - `access.granted` when the member has an access level.
 * `mk_subscription_plan` is filled from the plan of an active (or status-less) subscription and
 * `mk_access_level` from the access level, unless the member's own fields carry them.
 */
import type { EventMapping, Mappings, TagRef } from '#shared/api.ts'
import { subscriptionStatusKind } from '#shared/events.ts'
import type { MemberEvent } from './envelope.ts'
import { applyRules } from './rules.ts'

const uniqueTags = (tags: TagRef[]): TagRef[] => {
  const seen = new Set<string>()
  return tags.filter((t) => (seen.has(t.name) ? false : (seen.add(t.name), true)))
}

/** The mapping one snapshot applies: the snapshot's own, plus the tags its state implies. */
export function snapshotMapping(mappings: Mappings, event: MemberEvent): EventMapping {
  const saved = mappings.events['member.snapshot']
  const own = (saved && applyRules(saved, event.data)) ?? {
    add_tags: [],
    remove_tags: [],
    add_to_forms: [],
    add_to_sequences: [],
    unsubscribe: false,
  }
  const implied: EventMapping[] = []
  const kind = subscriptionStatusKind(event.data.subscription?.status)
  if (kind === 'active') implied.push(...optional(mappings.events['subscription.started'], event))
  if (kind === 'ended') implied.push(...optional(mappings.events['subscription.canceled'], event))
  if (event.data.access?.level) implied.push(...optional(mappings.events['access.granted'], event))
  return {
    add_tags: uniqueTags([...own.add_tags, ...implied.flatMap((m) => m.add_tags)]),
    remove_tags: uniqueTags([...own.remove_tags, ...implied.flatMap((m) => m.remove_tags)]),
    add_to_forms: own.add_to_forms,
    add_to_sequences: own.add_to_sequences,
    unsubscribe: own.unsubscribe,
  }
}

const optional = (m: EventMapping | undefined, event: MemberEvent): EventMapping[] => (m ? [applyRules(m, event.data)] : [])

/** The `mk_*` values a snapshot carries: the member's own, then the plan and access level. */
export function snapshotFieldValues(event: MemberEvent, own: Record<string, string | null>): Record<string, string | null> {
  const given: Record<string, string | null> = { ...own }
  const plan = event.data.subscription?.plan
  const kind = subscriptionStatusKind(event.data.subscription?.status)
  if ((kind === 'active' || kind === 'none') && !('mk_subscription_plan' in own) && typeof plan === 'string' && plan.trim() !== '') {
    given.mk_subscription_plan = plan
  }
  const level = event.data.access?.level
  if (!('mk_access_level' in own) && typeof level === 'string' && level.trim() !== '') given.mk_access_level = level
  return given
}

export const SNAPSHOT_TYPE = 'member.snapshot'

/** Snapshots are claimed after live events: a sync never delays what members do now. */
export const SNAPSHOT_PRIORITY = 1
