/**
 * Rules: each event type's mapping is its unconditional actions (what every saved document had
 * before rules) followed by an ordered list of rules, each conditions plus the same actions. Every
 * rule whose conditions all hold applies; their actions are joined in order, each tag, form and
 * sequence once. Within one event an add wins over a remove: a tag one matching rule adds and
 * another removes is added. One matching `unsubscribe` unsubscribes.
 */
import type { EventMapping, TagRef } from '#shared/api.ts'
import { allHold, type ConditionSubject } from '#shared/conditions.ts'

const tagKey = (t: TagRef) => t.name.trim().toLowerCase()

function uniqueBy<T>(items: T[], key: (item: T) => string | number): T[] {
  const seen = new Set<string | number>()
  return items.filter((item) => {
    const k = key(item)
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

/** The indices of the rules whose conditions hold for the event's data. */
export function matchingRules(mapping: EventMapping, data: ConditionSubject): number[] {
  return (mapping.rules ?? []).flatMap((rule, i) => (allHold(rule.conditions, data) ? [i] : []))
}

/** The actions the event applies: the mapping's own, then every matching rule's, joined. */
export function applyRules(mapping: EventMapping, data: ConditionSubject): EventMapping {
  const rules = mapping.rules ?? []
  if (rules.length === 0) return withoutRules(mapping)
  const parts = [mapping, ...matchingRules(mapping, data).map((i) => rules[i]!)]
  const addTags = uniqueBy(
    parts.flatMap((p) => p.add_tags),
    tagKey,
  )
  const added = new Set(addTags.map(tagKey))
  return {
    add_tags: addTags,
    remove_tags: uniqueBy(
      parts.flatMap((p) => p.remove_tags),
      tagKey,
    ).filter((t) => !added.has(tagKey(t))),
    add_to_forms: uniqueBy(
      parts.flatMap((p) => p.add_to_forms),
      (f) => f.id,
    ),
    add_to_sequences: uniqueBy(
      parts.flatMap((p) => p.add_to_sequences),
      (s) => s.id,
    ),
    unsubscribe: parts.some((p) => p.unsubscribe),
    ...(mapping.erase !== undefined ? { erase: mapping.erase } : {}),
  }
}

function withoutRules(mapping: EventMapping): EventMapping {
  const { rules: _rules, ...rest } = mapping
  return rest
}
