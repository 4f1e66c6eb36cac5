/**
 * Pure rules for the mappings document: filling in every event type, comparing drafts, checking
 * the limits the server enforces, and pointing a server 400 at the part of the form it names.
 */
import { LIMITS, type EventMapping, type Mappings, type TagRef } from '../../../shared/api.ts'
import { emptyEventMapping } from '../../../shared/defaults.ts'
import { EVENT_TYPES, hasUnclosedPlaceholder, isEventType, unknownPlaceholder, type EventType } from '../../../shared/events.ts'
import { MK_FIELD_PATTERN } from '../../../shared/fields.ts'
import { CONTROL_CHARACTER_PROBLEM, hasControlCharacter } from '../../../shared/text.ts'

export type TagList = 'add_tags' | 'remove_tags'
export type KitList = 'add_to_forms' | 'add_to_sequences'
export type EventSlot = TagList | KitList | 'unsubscribe'

/** Where an error is shown: `events.<type>.<slot>`, `fields`, `fields.<i>.source`, `fields.<i>.kit_field`. */
export type ErrorMap = Record<string, string>

export const eventSlot = (type: EventType, slot: EventSlot) => `events.${type}.${slot}`
export const fieldSlot = (index: number, part: 'source' | 'kit_field') => `fields.${index}.${part}`

const tagRef = (t: TagRef): TagRef => (t.id === undefined ? { name: t.name } : { id: t.id, name: t.name })

/** A deep copy holding every event type, with tags in one canonical shape. */
export function completeMappings(doc: Mappings): Mappings {
  const events: Mappings['events'] = {}
  for (const type of EVENT_TYPES) {
    const m: EventMapping = doc.events[type] ?? emptyEventMapping()
    events[type] = {
      add_tags: m.add_tags.map(tagRef),
      remove_tags: m.remove_tags.map(tagRef),
      add_to_forms: m.add_to_forms.map((f) => ({ id: f.id, name: f.name })),
      add_to_sequences: m.add_to_sequences.map((s) => ({ id: s.id, name: s.name })),
      unsubscribe: m.unsubscribe,
    }
  }
  return {
    events,
    fields: doc.fields.map((f) => ({ source: f.source, kit_field: { key: f.kit_field.key, label: f.kit_field.label } })),
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

export { hasPlaceholder } from '../../../shared/events.ts'

/** Why a member field name cannot be used, or null. */
export function sourceProblem(source: string): string | null {
  if (source.trim() === '') return 'Choose a member field.'
  if (!MK_FIELD_PATTERN.test(source)) return 'Member fields start with mk_ followed by lower-case letters, digits or _ (at most 60).'
  return null
}

function checkTags(type: EventType, slot: TagList, tags: TagRef[], errors: ErrorMap): void {
  if (tags.length > LIMITS.tagsPerList) {
    errors[eventSlot(type, slot)] = `At most ${LIMITS.tagsPerList} tags per list.`
    return
  }
  const seen = new Set<string>()
  for (const tag of tags) {
    const key = tag.name.trim().toLowerCase()
    const problem = tagNameProblem(tag.name) ?? (seen.has(key) ? 'it is listed twice.' : null)
    if (problem) {
      errors[eventSlot(type, slot)] = `“${tag.name}”: ${problem}`
      return
    }
    seen.add(key)
  }
}

/** Every problem the server would refuse, keyed by the slot that shows it. */
export function validateMappings(doc: Mappings): ErrorMap {
  const errors: ErrorMap = {}
  for (const type of EVENT_TYPES) {
    const m = doc.events[type]
    if (!m) continue
    checkTags(type, 'add_tags', m.add_tags, errors)
    checkTags(type, 'remove_tags', m.remove_tags, errors)
    for (const slot of ['add_to_forms', 'add_to_sequences'] as const) {
      const noun = slot === 'add_to_forms' ? 'Form' : 'Sequence'
      const unusable = m[slot].find((ref) => hasControlCharacter(ref.name))
      if (m[slot].length > LIMITS.listsPerEvent) errors[eventSlot(type, slot)] = `At most ${LIMITS.listsPerEvent} per event.`
      else if (unusable) errors[eventSlot(type, slot)] = `“${unusable.name}”: ${noun} names ${CONTROL_CHARACTER_PROBLEM}; rename it in Kit.`
    }
  }
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
    else if (hasControlCharacter(label) || hasControlCharacter(key)) errors[fieldSlot(i, 'kit_field')] = `Kit field labels ${CONTROL_CHARACTER_PROBLEM}.`
    else if (key === '') errors[fieldSlot(i, 'kit_field')] = 'Kit needs letters or digits in the label to make a field key.'
    else if (keys.has(key)) errors[fieldSlot(i, 'kit_field')] = `The Kit field “${label.trim()}” already receives ${keys.get(key)}.`
    else keys.set(key, field.source || 'another field')
  })
  return errors
}

/**
 * The slot a server validation message is about. Paths come as `events.user.signed_up.add_tags[0].name`,
 * `body.events.user.signed_up.add_tags.0.name` or `fields[1].source`; null when none is named.
 */
export function slotForServerMessage(message: string): string | null {
  const path = message.replace(/\[(\d+)\]/g, '.$1').replace(/\//g, '.')
  const event = /events\.([a-z]+\.[a-z_]+)\.(add_tags|remove_tags|add_to_forms|add_to_sequences|unsubscribe)\b/.exec(path)
  if (event && isEventType(event[1]!)) return eventSlot(event[1], event[2] as EventSlot)
  const field = /\bfields\.(\d+)\.(source|kit_field)\b/.exec(path)
  if (field) return fieldSlot(Number(field[1]), field[2] as 'source' | 'kit_field')
  if (/\bfields\b/.test(path)) return 'fields'
  return null
}
