/**
 * Pure rules for the mappings document: filling in every event type, comparing drafts, checking
 * the limits the server enforces, and pointing a server 400 at the part of the form it names.
 */
import type { EventMapping, Mappings, Rule, TagRef } from '#shared/api.ts'
import { CONDITION_LIMITS, conditionIssue, type Condition, type ConditionIssue } from '#shared/conditions.ts'
import { LIMITS } from '#shared/limits.ts'
import { emptyEventMapping } from '#shared/defaults.ts'
import { notCarriedProblem, placeholderNotCarried } from '#shared/event-catalogue.ts'
import { EVENT_TYPES, hasUnclosedPlaceholder, isEventType, unknownPlaceholder, type EventType } from '#shared/events.ts'
import { MK_FIELD_PATTERN } from '#shared/fields.ts'
import { CONTROL_CHARACTER_PROBLEM, hasControlCharacter } from '#shared/text.ts'

export type TagList = 'add_tags' | 'remove_tags'
export type KitList = 'add_to_forms' | 'add_to_sequences'
export type EventSlot = TagList | KitList | 'unsubscribe' | 'erase'

/**
 * Where an error is shown: `events.<type>.<slot>`, `events.<type>.rules.<i>.<slot>`,
 * `events.<type>.rules.<i>.conditions.<j>`, `events.<type>.rules`, `filter.<j>`, `filter`, `fields`,
 * `fields.<i>.source`, `fields.<i>.kit_field`.
 */
export type ErrorMap = Record<string, string>

/** A rule's index in its event, or null for the event's own (unconditional) actions. */
export type RuleIndex = number | null

/** Where a list of conditions sits: one rule of an event, or the member filter. */
export type ConditionsAt = { type: EventType; rule: number } | 'filter'

export const eventSlot = (type: EventType, slot: EventSlot, rule: RuleIndex = null) =>
  rule === null ? `events.${type}.${slot}` : `events.${type}.rules.${rule}.${slot}`
export const fieldSlot = (index: number, part: 'source' | 'kit_field') => `fields.${index}.${part}`
export const conditionSlot = (at: ConditionsAt, index: number) =>
  at === 'filter' ? `filter.${index}` : `events.${at.type}.rules.${at.rule}.conditions.${index}`
export const conditionsSlot = (at: ConditionsAt) => (at === 'filter' ? 'filter' : `events.${at.type}.rules.${at.rule}.conditions`)

const tagRef = (t: TagRef): TagRef => (t.id === undefined ? { name: t.name } : { id: t.id, name: t.name })

/** A condition in one canonical shape: only the parts it holds, in one key order. */
const conditionCopy = (c: Condition): Condition => ({
  field: c.field,
  op: c.op,
  ...(c.value !== undefined ? { value: c.value } : {}),
  ...(c.values !== undefined ? { values: [...c.values] } : {}),
})

function actionsCopy(m: EventMapping | Rule) {
  return {
    add_tags: m.add_tags.map(tagRef),
    remove_tags: m.remove_tags.map(tagRef),
    add_to_forms: m.add_to_forms.map((f) => ({ id: f.id, name: f.name })),
    add_to_sequences: m.add_to_sequences.map((s) => ({ id: s.id, name: s.name })),
    unsubscribe: m.unsubscribe,
  }
}

/** The event's own actions and each rule's, with the rule index (null for its own). */
export const partsOf = (m: EventMapping): { rule: RuleIndex; actions: EventMapping | Rule }[] => [
  { rule: null, actions: m },
  ...(m.rules ?? []).map((actions, rule) => ({ rule, actions })),
]

/** A deep copy holding every event type, with tags in one canonical shape. */
export function completeMappings(doc: Mappings): Mappings {
  const events: Mappings['events'] = {}
  for (const type of EVENT_TYPES) {
    const m: EventMapping = doc.events[type] ?? emptyEventMapping()
    events[type] = {
      ...actionsCopy(m),
      // As the server keeps it: only on a deletion, and only when on.
      ...(type === 'user.deleted' && m.erase === true ? { erase: true } : {}),
      ...(m.rules?.length ? { rules: m.rules.map((r) => ({ conditions: r.conditions.map(conditionCopy), ...actionsCopy(r) })) } : {}),
    }
  }
  return {
    events,
    fields: doc.fields.map((f) => ({ source: f.source, kit_field: { key: f.kit_field.key, label: f.kit_field.label } })),
    ...(doc.filter?.length ? { filter: doc.filter.map(conditionCopy) } : {}),
  }
}

export function sameMappings(a: Mappings, b: Mappings): boolean {
  return JSON.stringify(completeMappings(a)) === JSON.stringify(completeMappings(b))
}

/** Why a tag name cannot be used, or null when it can. */
export function tagNameProblem(name: string): string | null {
  const trimmed = name.trim()
  if (trimmed === '') return 'A tag needs a name.'
  if (trimmed.length > LIMITS.tagNameMax) return `Tag names can be at most ${LIMITS.tagNameMax} characters.`
  if (hasControlCharacter(name)) return `Tag names ${CONTROL_CHARACTER_PROBLEM}.`
  if (hasUnclosedPlaceholder(trimmed)) return 'A placeholder opened with {{ is never closed: end it with }}.'
  const unknown = unknownPlaceholder(trimmed)
  if (unknown !== null) {
    return `{{${unknown}}} is not a known placeholder; use {{access.level}}, {{subscription.plan}} or {{member.fields.mk_…}}.`
  }
  return null
}

export { hasPlaceholder } from '#shared/events.ts'

/** Why a member field name cannot be used, or null. */
export function sourceProblem(source: string): string | null {
  if (source.trim() === '') return 'Choose a member field.'
  if (!MK_FIELD_PATTERN.test(source)) return 'Member fields start with mk_ followed by lower-case letters, digits or _ (at most 60).'
  return null
}

function checkTags(slot: string, tags: TagRef[], errors: ErrorMap): void {
  if (tags.length > LIMITS.tagsPerList) {
    errors[slot] = `At most ${LIMITS.tagsPerList} tags per list.`
    return
  }
  const seen = new Set<string>()
  for (const tag of tags) {
    const key = tag.name.trim().toLowerCase()
    const problem = tagNameProblem(tag.name) ?? (seen.has(key) ? 'it is listed twice.' : null)
    if (problem) {
      errors[slot] = `“${tag.name}”: ${problem}`
      return
    }
    seen.add(key)
  }
}

/** What is wrong with a condition, for the owner; the decision is the shared `conditionIssue`. */
export const CONDITION_ISSUE_WORDS: Record<ConditionIssue, string> = {
  unknown_field: 'Choose a field: member fields are mk_ followed by lower-case letters, digits or _ (at most 60).',
  value_with_list: 'This condition holds a single value, but its test takes a list.',
  no_values: 'List at least one value.',
  blank_value: 'A value in the list is empty.',
  value_with_presence: 'This test takes no value, but the condition holds one.',
  values_with_single: 'This condition holds a list, but its test takes a single value.',
  no_value: 'Type the value to compare with.',
  consent_value: 'Choose yes or no.',
}

function checkConditions(at: ConditionsAt, conditions: readonly Condition[], errors: ErrorMap): void {
  if (conditions.length > CONDITION_LIMITS.conditions) errors[conditionsSlot(at)] = `At most ${CONDITION_LIMITS.conditions} conditions.`
  conditions.forEach((c, i) => {
    const issue = conditionIssue(c)
    const tooLong = [c.value ?? '', ...(c.values ?? [])].some((v) => v.length > CONDITION_LIMITS.valueMax)
    const unusable = [c.value ?? '', ...(c.values ?? [])].some(hasControlCharacter)
    if (issue) errors[conditionSlot(at, i)] = CONDITION_ISSUE_WORDS[issue]
    else if ((c.values?.length ?? 0) > CONDITION_LIMITS.values) errors[conditionSlot(at, i)] = `At most ${CONDITION_LIMITS.values} values.`
    else if (tooLong) errors[conditionSlot(at, i)] = `Values can be at most ${CONDITION_LIMITS.valueMax} characters.`
    else if (unusable) errors[conditionSlot(at, i)] = `Values ${CONTROL_CHARACTER_PROBLEM}.`
  })
}

/** Every problem the server would refuse, keyed by the slot that shows it. */
export function validateMappings(doc: Mappings): ErrorMap {
  const errors: ErrorMap = {}
  for (const type of EVENT_TYPES) {
    const m = doc.events[type]
    if (!m) continue
    if ((m.rules?.length ?? 0) > LIMITS.rulesPerEvent) errors[`events.${type}.rules`] = `At most ${LIMITS.rulesPerEvent} rules per event.`
    for (const { rule, actions } of partsOf(m)) {
      if (rule !== null) checkConditions({ type, rule }, (actions as Rule).conditions, errors)
      checkTags(eventSlot(type, 'add_tags', rule), actions.add_tags, errors)
      checkTags(eventSlot(type, 'remove_tags', rule), actions.remove_tags, errors)
      for (const slot of ['add_to_forms', 'add_to_sequences'] as const) {
        const noun = slot === 'add_to_forms' ? 'Form' : 'Sequence'
        const unusable = actions[slot].find((ref) => hasControlCharacter(ref.name))
        if (actions[slot].length > LIMITS.listsPerEvent) errors[eventSlot(type, slot, rule)] = `At most ${LIMITS.listsPerEvent} per event.`
        else if (unusable)
          errors[eventSlot(type, slot, rule)] = `“${unusable.name}”: ${noun} names ${CONTROL_CHARACTER_PROBLEM}; rename it in Kit.`
      }
    }
  }
  checkConditions('filter', doc.filter ?? [], errors)
  if (doc.fields.length > LIMITS.fieldMappingsMax) {
    errors.fields = `At most ${LIMITS.fieldMappingsMax} field mappings.`
  }
  const sources = new Map<string, number>()
  const keys = new Map<string, string>()
  doc.fields.forEach((field, i) => {
    const problem = sourceProblem(field.source)
    if (problem) errors[fieldSlot(i, 'source')] = problem
    else if (sources.has(field.source)) errors[fieldSlot(i, 'source')] = `${field.source} is already mapped above.`
    else sources.set(field.source, i)

    const { key, label } = field.kit_field
    if (label.trim() === '') errors[fieldSlot(i, 'kit_field')] = 'Choose a Kit field or type a label for a new one.'
    else if (label.trim().length > 255) errors[fieldSlot(i, 'kit_field')] = 'Kit field labels can be at most 255 characters.'
    else if (hasControlCharacter(label) || hasControlCharacter(key))
      errors[fieldSlot(i, 'kit_field')] = `Kit field labels ${CONTROL_CHARACTER_PROBLEM}.`
    else if (key === '') errors[fieldSlot(i, 'kit_field')] = 'Kit needs letters or digits in the label to make a field key.'
    else if (keys.has(key)) errors[fieldSlot(i, 'kit_field')] = `The Kit field “${label.trim()}” already receives ${keys.get(key)}.`
    else keys.set(key, field.source || 'another field')
  })
  return errors
}

/**
 * The slot a server validation message is about. Paths come as `events.user.signed_up.add_tags[0].name`,
 * `body.events.user.signed_up.add_tags.0.name`, `events.user.signed_up.rules[1].conditions[0].value`,
 * `filter[0].value` or `fields[1].source`; null when none is named.
 */
export function slotForServerMessage(message: string): string | null {
  const path = message.replace(/\[(\d+)\]/g, '.$1').replace(/\//g, '.')
  const rule =
    /events\.([a-z]+\.[a-z_]+)\.rules\.(\d+)\.(conditions\.\d+|add_tags|remove_tags|add_to_forms|add_to_sequences|unsubscribe)\b/.exec(path)
  if (rule && isEventType(rule[1]!)) return `events.${rule[1]}.rules.${rule[2]}.${rule[3]}`
  const event = /events\.([a-z]+\.[a-z_]+)\.(add_tags|remove_tags|add_to_forms|add_to_sequences|unsubscribe|erase)\b/.exec(path)
  if (event && isEventType(event[1]!)) return eventSlot(event[1], event[2] as EventSlot)
  const filter = /\bfilter\.(\d+)\b/.exec(path)
  if (filter) return `filter.${filter[1]}`
  const field = /\bfields\.(\d+)\.(source|kit_field)\b/.exec(path)
  if (field) return fieldSlot(Number(field[1]), field[2] as 'source' | 'kit_field')
  if (/\bfields\b/.test(path)) return 'fields'
  return null
}

/** Why a tag name cannot be used for this event type (including a placeholder it never carries), or null. */
export function tagNameProblemFor(type: EventType, name: string): string | null {
  const general = tagNameProblem(name)
  if (general) return general
  const path = placeholderNotCarried(type, name.trim())
  return path === null ? null : `${notCarriedProblem(type, path)}.`
}

/**
 * Guard rails: mappings that are allowed by the schema but almost certainly not what the owner
 * wants, each with the one-click fixes the panel offers beside the event. `error` ones are refused
 * on save (the server refuses them too), `confirm` ones until the owner confirms, `warning` ones
 * are only shown.
 */
export type GuardLevel = 'error' | 'confirm' | 'warning'

export type GuardFix =
  | { kind: 'unsubscribe-off'; label: string }
  | { kind: 'confirm-unsubscribe'; label: string }
  | { kind: 'remove'; list: TagList | KitList; index: number; label: string }

export interface Guard {
  /** Stable within one document, for list keys. */
  id: string
  type: EventType
  /** The rule whose actions trip it, or null for the event's own actions. */
  rule: RuleIndex
  slot: EventSlot
  level: GuardLevel
  message: string
  fixes: GuardFix[]
}

/** What the connected Kit account says about forms and sequences; unknown until loaded. */
export interface KitLists {
  forms: { id: number; name: string; archived: boolean }[] | null
  sequences: { id: number; name: string; active?: boolean }[] | null
}

export interface GuardOptions {
  /** The owner confirmed that new members are unsubscribed (or the saved document already did). */
  signupUnsubscribeConfirmed: boolean
}

function adds(m: EventMapping | Rule): string[] {
  const parts: string[] = []
  if (m.add_tags.length) parts.push('adds tags')
  if (m.add_to_forms.length) parts.push('adds to forms')
  if (m.add_to_sequences.length) parts.push('starts sequences')
  return parts
}

const listWords = (parts: string[]) => (parts.length <= 1 ? parts.join('') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`)
const tagKey = (t: TagRef) => t.name.trim().toLowerCase()
/** A rule that always applies: it has no conditions. */
const always = (rule: RuleIndex, actions: EventMapping | Rule) => rule === null || (actions as Rule).conditions.length === 0

/** Every guard rail the document trips, in event order; within an event, its own actions first, then each rule. */
export function guardRails(doc: Mappings, kit: KitLists, options: GuardOptions): Guard[] {
  const guards: Guard[] = []
  for (const type of EVENT_TYPES) {
    const m = doc.events[type]
    if (!m) continue
    for (const { rule, actions } of partsOf(m)) guards.push(...partGuards(type, rule, actions, kit, options))
    guards.push(...alwaysContradictions(type, m))
  }
  return guards
}

/** The guard rails of one part of an event: its own actions (rule null) or one rule's. */
function partGuards(type: EventType, rule: RuleIndex, m: EventMapping | Rule, kit: KitLists, options: GuardOptions): Guard[] {
  const guards: Guard[] = []
  const base = rule === null ? type : `${type}:rules.${rule}`
  const push = (g: Omit<Guard, 'type' | 'rule' | 'id'> & { id: string }) => guards.push({ ...g, id: `${base}:${g.id}`, type, rule })
  const who = rule === null ? 'This event' : 'This rule'

  // Conditional rules unsubscribe only the members they pick: that is their point, so only the event's own needs confirming.
  const unconfirmed = m.unsubscribe && rule === null && type === 'user.signed_up' && !options.signupUnsubscribeConfirmed
  if (unconfirmed) {
    push({
      id: 'unsubscribe-signup',
      slot: 'unsubscribe',
      level: 'confirm',
      message: 'Every person who joins would be unsubscribed from your Kit emails straight away. Confirm that this is what you want.',
      fixes: [
        { kind: 'confirm-unsubscribe', label: 'Yes, unsubscribe new members' },
        { kind: 'unsubscribe-off', label: 'Do not unsubscribe' },
      ],
    })
  }
  const added = adds(m)
  // Until the sign-up unsubscribe is confirmed, its confirmation is the one notice about it.
  if (m.unsubscribe && added.length && !unconfirmed) {
    push({
      id: 'unsubscribe-and-add',
      slot: 'unsubscribe',
      level: 'warning',
      message: `${who} ${listWords(added)} and then unsubscribes the member, so the emails those would send never reach them.`,
      fixes: [{ kind: 'unsubscribe-off', label: 'Do not unsubscribe' }],
    })
  }

  for (const list of ['add_tags', 'remove_tags'] as const) {
    m[list].forEach((tag, index) => {
      const path = placeholderNotCarried(type, tag.name)
      if (path === null) return
      push({
        id: `${list}:${index}:placeholder`,
        slot: list,
        level: 'error',
        message: `“${tag.name}”: ${notCarriedProblem(type, path)}.`,
        fixes: [{ kind: 'remove', list, index, label: `Remove “${tag.name}”` }],
      })
    })
  }

  m.remove_tags.forEach((tag, removeIndex) => {
    const key = tagKey(tag)
    const addIndex = m.add_tags.findIndex((t) => tagKey(t) === key)
    if (addIndex < 0) return
    push({
      id: `both:${key}`,
      slot: 'remove_tags',
      level: 'error',
      message: `“${tag.name}” is both added and removed by ${who.toLowerCase()}; keep it in one of the two lists.`,
      fixes: [
        { kind: 'remove', list: 'remove_tags', index: removeIndex, label: 'Keep it in Add tags only' },
        { kind: 'remove', list: 'add_tags', index: addIndex, label: 'Keep it in Remove tags only' },
      ],
    })
  })

  m.add_to_forms.forEach((ref, index) => {
    if (!kit.forms) return
    const form = kit.forms.find((f) => f.id === ref.id)
    const why = !form ? 'is no longer in Kit' : form.archived ? 'is archived in Kit' : null
    if (!why) return
    push({
      id: `form:${ref.id}`,
      slot: 'add_to_forms',
      level: 'warning',
      message: `The form “${form?.name ?? ref.name}” ${why}: members cannot be added to it.`,
      fixes: [{ kind: 'remove', list: 'add_to_forms', index, label: `Remove “${form?.name ?? ref.name}”` }],
    })
  })

  m.add_to_sequences.forEach((ref, index) => {
    if (!kit.sequences) return
    const sequence = kit.sequences.find((s) => s.id === ref.id)
    const why = !sequence ? 'is no longer in Kit' : sequence.active === false ? 'is inactive in Kit' : null
    if (!why) return
    push({
      id: `sequence:${ref.id}`,
      slot: 'add_to_sequences',
      level: 'warning',
      message: `The sequence “${sequence?.name ?? ref.name}” ${why}: Kit refuses to add members to it.`,
      fixes: [{ kind: 'remove', list: 'add_to_sequences', index, label: `Remove “${sequence?.name ?? ref.name}”` }],
    })
  })
  return guards
}

/**
 * A tag removed by one part that always applies (the event's own actions, a rule without
 * conditions) and added by another that always applies: both always apply, so the server refuses
 * it. Shown on the part that removes it, with a fix for either side.
 */
function alwaysContradictions(type: EventType, m: EventMapping): Guard[] {
  const parts = partsOf(m).filter(({ rule, actions }) => always(rule, actions))
  const guards: Guard[] = []
  for (const remover of parts) {
    remover.actions.remove_tags.forEach((tag, index) => {
      const adder = parts.find((p) => p.rule !== remover.rule && p.actions.add_tags.some((t) => tagKey(t) === tagKey(tag)))
      if (!adder) return
      const addedBy = adder.rule === null ? 'the event’s own actions' : `rule ${adder.rule + 1}, which has no conditions`
      guards.push({
        id: `${type}:rules.${remover.rule ?? 'own'}:always:${tagKey(tag)}`,
        type,
        rule: remover.rule,
        slot: 'remove_tags',
        level: 'error',
        message: `“${tag.name}” is removed here and added by ${addedBy}; both always apply, so keep it in one of the two.`,
        fixes: [{ kind: 'remove', list: 'remove_tags', index, label: `Do not remove “${tag.name}”` }],
      })
    })
  }
  return guards
}

/** Guard rails that stop a save until fixed or confirmed. */
export const blockingGuards = (guards: Guard[]) => guards.filter((g) => g.level !== 'warning')
