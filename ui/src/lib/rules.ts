/**
 * Rules in words, and the choices the rules editor offers. Each event reads as one line ("Member
 * signs up → add New Member; if plan is pro-annual → add Annual"), conditions in the shared words
 * of `conditionsWords`, so the panel says what the server decides; an event that changes nothing
 * in Kit is "not used"; and a condition offers the fields its event carries.
 */
import type { EventMapping, Mappings, Rule } from '#shared/api.ts'
import { CONDITION_FIELDS, conditionsWords, fieldWords, isConditionField, type Condition } from '#shared/conditions.ts'
import { EVENT_PLACEHOLDERS, EVENT_TITLES } from '#shared/event-catalogue.ts'
import type { EventType } from '#shared/events.ts'
import { MK_FIELD_CATALOGUE, MK_FIELD_PATTERN } from '#shared/fields.ts'

/** How many names of one list a summary line spells out before "and N more". */
export const SUMMARY_NAMES = 3

/** Names in words: "A", "A and B", "A, B and C", "A, B, C and 2 more". */
export function namesWords(names: readonly string[]): string {
  if (names.length > SUMMARY_NAMES) return `${names.slice(0, SUMMARY_NAMES).join(', ')} and ${names.length - SUMMARY_NAMES} more`
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
}

type Actions = Pick<EventMapping, 'add_tags' | 'remove_tags' | 'add_to_forms' | 'add_to_sequences' | 'unsubscribe' | 'erase'>

const names = (refs: readonly { name: string }[]) => namesWords(refs.map((r) => r.name.trim()))
const plural = (n: number, word: string) => (n === 1 ? word : `${word}s`)

/** Whether a set of actions changes anything in Kit. */
export const hasActions = (m: Actions): boolean =>
  m.add_tags.length + m.remove_tags.length + m.add_to_forms.length + m.add_to_sequences.length > 0 || m.unsubscribe || m.erase === true

/** What a set of actions does, in words: "add New Member, remove Cancelled, unsubscribe"; empty when nothing. */
export function actionsWords(m: Actions): string {
  const parts: string[] = []
  if (m.add_tags.length) parts.push(`add ${names(m.add_tags)}`)
  if (m.remove_tags.length) parts.push(`remove ${names(m.remove_tags)}`)
  if (m.add_to_forms.length) parts.push(`add to ${plural(m.add_to_forms.length, 'form')} ${names(m.add_to_forms)}`)
  if (m.add_to_sequences.length) parts.push(`start ${plural(m.add_to_sequences.length, 'sequence')} ${names(m.add_to_sequences)}`)
  if (m.unsubscribe) parts.push('unsubscribe')
  if (m.erase) parts.push('erase from Kit')
  return parts.join(', ')
}

/** When a rule applies, in words: "if plan is pro-annual", or "always" for a rule without conditions. */
export const ruleCondition = (rule: Rule): string => (rule.conditions.length ? `if ${conditionsWords(rule.conditions)}` : 'always')

/** One rule in words: "if plan is pro-annual → add Annual". */
export const ruleWords = (rule: Rule): string => `${ruleCondition(rule)} → ${hasActions(rule) ? actionsWords(rule) : 'nothing'}`

/** What an event does, after its name: "add New Member; if plan is pro-annual → add Annual", or "nothing". */
export function mappingWords(m: EventMapping): string {
  const clauses = [...(hasActions(m) ? [actionsWords(m)] : []), ...(m.rules ?? []).map(ruleWords)]
  return clauses.length ? clauses.join('; ') : 'nothing'
}

/** The event's summary line: "Member signs up → add New Member; if plan is pro-annual → add Annual". */
export const eventSummary = (type: EventType, m: EventMapping): string => `${EVENT_TITLES[type]} → ${mappingWords(m)}`

/** Nothing mapped and no rules: the event changes nothing in Kit. */
export const isUnused = (m: EventMapping | undefined): boolean => !m || (!hasActions(m) && !m.rules?.length)

/** The member filter in words. */
export const filterWords = (filter: readonly Condition[] | undefined): string =>
  filter?.length ? `Only these members reach Kit: ${conditionsWords(filter)}.` : 'Every member reaches Kit.'

/** The fixed fields a condition on this event can test (null: the member filter, which sees every event). */
function fixedFields(type: EventType | null): string[] {
  const carried = type === null ? null : EVENT_PLACEHOLDERS[type]
  return CONDITION_FIELDS.filter((field) => {
    if (carried === null) return true
    if (field.startsWith('subscription.')) return carried.includes('subscription.plan')
    if (field === 'access.level') return carried.includes('access.level')
    return true
  })
}

export interface FieldChoice {
  value: string
  label: string
}

export interface FieldChoices {
  fixed: FieldChoice[]
  /** `member.fields.mk_…`: the catalogue's, then those the field mappings copy. */
  member: FieldChoice[]
}

/**
 * The fields a condition can test: those the event carries (all of them for the member filter),
 * then the member fields; `current` is always among them, so a saved condition never changes by
 * being shown.
 */
export function conditionFieldChoices(type: EventType | null, doc: Pick<Mappings, 'fields'>, current?: string): FieldChoices {
  const fixed = fixedFields(type)
  const member = [...new Set([...MK_FIELD_CATALOGUE.map((f) => f.key), ...doc.fields.map((f) => f.source)])]
    .filter((key) => MK_FIELD_PATTERN.test(key))
    .map((key) => `member.fields.${key}`)
  if (current !== undefined && !fixed.includes(current) && !member.includes(current)) {
    if (current.startsWith('member.fields.') && isConditionField(current)) member.push(current)
    else fixed.push(current)
  }
  const choice = (value: string): FieldChoice => ({ value, label: fieldWords(value) })
  return { fixed: fixed.map(choice), member: member.map(choice) }
}

/** A new rule's first condition: "is …" on the field the event is most about (its plan, its access level, else the email domain). */
export function firstCondition(type: EventType): Condition {
  const carried = EVENT_PLACEHOLDERS[type]
  const field = carried.includes('subscription.plan')
    ? 'subscription.plan'
    : carried.includes('access.level')
      ? 'access.level'
      : 'member.email_domain'
  return { field, op: 'is', value: '' }
}
