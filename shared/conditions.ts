/**
 * The condition language of rules and of the member filter: what an owner can ask of an event
 * ("plan is pro-annual", "email domain ends with example.com"), its schema, how a condition is
 * checked against an event, and how it reads in words. Pure and shared: the server decides with it
 * and the panel summarises with it, so both say the same.
 *
 * Text compares ignore case and the spaces around values: owners type "Pro-Annual" for the plan
 * `pro-annual`. A value the event does not carry is empty: `is set` fails, `is empty` holds, and
 * every other operator fails (`is not` and `is not one of` included: nothing is known to differ).
 */
export const CONDITION_FIELDS = [
  'subscription.plan',
  'subscription.status',
  'access.level',
  'member.consent.marketing',
  'member.email_domain',
] as const
/** A fixed field, or one of the platform's member fields (`member.fields.mk_…`). */
export type ConditionField = (typeof CONDITION_FIELDS)[number] | `member.fields.mk_${string}`

export const CONDITION_OPERATORS = [
  'is',
  'is_not',
  'is_one_of',
  'is_not_one_of',
  'is_set',
  'is_empty',
  'contains',
  'starts_with',
  'ends_with',
] as const
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number]

/** Operators that take a list (`values`), and those that take nothing. */
export const LIST_OPERATORS: readonly ConditionOperator[] = ['is_one_of', 'is_not_one_of']
export const PRESENCE_OPERATORS: readonly ConditionOperator[] = ['is_set', 'is_empty']

const MEMBER_FIELD = /^member\.fields\.mk_[a-z0-9_]{1,60}$/

/** The most conditions one rule or the filter holds, and the most values one list holds. */
export const CONDITION_LIMITS = { conditions: 10, values: 50, valueMax: 200 } as const

/** One condition (its schema is `Condition` in api.ts): `value` for the comparing operators, `values` for the list ones. */
export interface Condition {
  field: string
  op: ConditionOperator
  value?: string
  values?: string[]
}

export const isConditionField = (field: string): field is ConditionField =>
  (CONDITION_FIELDS as readonly string[]).includes(field) || MEMBER_FIELD.test(field)

/**
 * What is wrong with a condition, as a code, or null when it is well formed: a known field, a value
 * for the operators that compare one, a non-empty list for the list operators, nothing for the
 * presence operators. The server words it with `conditionProblem`; the panel has its own words.
 */
export type ConditionIssue =
  | 'unknown_field'
  | 'value_with_list'
  | 'no_values'
  | 'blank_value'
  | 'value_with_presence'
  | 'values_with_single'
  | 'no_value'
  | 'consent_value'

export function conditionIssue(c: Condition): ConditionIssue | null {
  if (!isConditionField(c.field)) return 'unknown_field'
  if (LIST_OPERATORS.includes(c.op)) {
    if (c.value !== undefined) return 'value_with_list'
    if (!c.values || c.values.length === 0) return 'no_values'
    if (c.values.some((v) => v.trim() === '')) return 'blank_value'
    return null
  }
  if (PRESENCE_OPERATORS.includes(c.op)) {
    return c.value !== undefined || c.values !== undefined ? 'value_with_presence' : null
  }
  if (c.values !== undefined) return 'values_with_single'
  if (c.value === undefined || c.value.trim() === '') return 'no_value'
  if (c.field === 'member.consent.marketing' && !['true', 'false'].includes(c.value.trim().toLowerCase())) return 'consent_value'
  return null
}

/** What is wrong with a condition, naming the part (`path` is where it sits in the document), or null when it is well formed. */
export function conditionProblem(c: Condition, path: string): string | null {
  const issue = conditionIssue(c)
  switch (issue) {
    case null:
      return null
    case 'unknown_field':
      return `${path}.field "${c.field}" is not a field a condition can use; use ${CONDITION_FIELDS.join(', ')} or member.fields.mk_…`
    case 'value_with_list':
      return `${path}.value is not used by ${c.op}; give the list as values`
    case 'no_values':
      return `${path}.values must list at least one value for ${c.op}`
    case 'blank_value':
      return `${path}.values must not hold a blank value`
    case 'value_with_presence':
      return `${path} takes no value with ${c.op}`
    case 'values_with_single':
      return `${path}.values is only for is_one_of and is_not_one_of; give one value`
    case 'no_value':
      return `${path}.value is required for ${c.op}`
    case 'consent_value':
      return `${path}.value must be "true" or "false" for member.consent.marketing`
  }
}

/** The parts of an event a condition reads (the envelope's `data`, loosely typed). */
export interface ConditionSubject {
  member: { email: string; fields?: Record<string, string | null> | null; consent?: { marketing: boolean } | null }
  subscription?: { plan?: string; status?: string } | null
  access?: { level?: string } | null
}

const norm = (text: string) => text.trim().toLowerCase()

/** The value a field has in the event, normalised; null when the event does not carry it. */
export function fieldValue(field: string, data: ConditionSubject): string | null {
  let raw: string | null | undefined
  if (field === 'subscription.plan') raw = data.subscription?.plan
  else if (field === 'subscription.status') raw = data.subscription?.status
  else if (field === 'access.level') raw = data.access?.level
  else if (field === 'member.consent.marketing') raw = data.member.consent ? String(data.member.consent.marketing) : null
  else if (field === 'member.email_domain') raw = data.member.email.slice(data.member.email.lastIndexOf('@') + 1)
  else if (field.startsWith('member.fields.')) raw = data.member.fields?.[field.slice('member.fields.'.length)]
  if (raw === undefined || raw === null) return null
  const value = norm(raw)
  return value === '' ? null : value
}

export function conditionHolds(c: Condition, data: ConditionSubject): boolean {
  const actual = fieldValue(c.field, data)
  if (c.op === 'is_set') return actual !== null
  if (c.op === 'is_empty') return actual === null
  if (actual === null) return false
  const values = (c.values ?? []).map(norm)
  const value = norm(c.value ?? '')
  switch (c.op) {
    case 'is':
      return actual === value
    case 'is_not':
      return actual !== value
    case 'is_one_of':
      return values.includes(actual)
    case 'is_not_one_of':
      return !values.includes(actual)
    case 'contains':
      return actual.includes(value)
    case 'starts_with':
      return actual.startsWith(value)
    case 'ends_with':
      return actual.endsWith(value)
  }
}

/** Every condition holds (an empty list always does). */
export const allHold = (conditions: readonly Condition[] | undefined, data: ConditionSubject): boolean =>
  (conditions ?? []).every((c) => conditionHolds(c, data))

const FIELD_WORDS: Record<(typeof CONDITION_FIELDS)[number], string> = {
  'subscription.plan': 'plan',
  'subscription.status': 'subscription status',
  'access.level': 'access level',
  'member.consent.marketing': 'agreed to marketing email',
  'member.email_domain': 'email domain',
}

const OPERATOR_WORDS: Record<ConditionOperator, string> = {
  is: 'is',
  is_not: 'is not',
  is_one_of: 'is one of',
  is_not_one_of: 'is not one of',
  is_set: 'is set',
  is_empty: 'is empty',
  contains: 'contains',
  starts_with: 'starts with',
  ends_with: 'ends with',
}

export const fieldWords = (field: string): string =>
  field.startsWith('member.fields.') ? field.slice('member.fields.'.length) : (FIELD_WORDS[field as keyof typeof FIELD_WORDS] ?? field)

export const operatorWords = (op: ConditionOperator): string => OPERATOR_WORDS[op]

/** One condition in words: `plan is pro-annual`, `access level is one of gold, silver`. */
export function conditionWords(c: Condition): string {
  const subject = `${fieldWords(c.field)} ${OPERATOR_WORDS[c.op]}`
  if (PRESENCE_OPERATORS.includes(c.op)) return subject
  if (LIST_OPERATORS.includes(c.op)) return `${subject} ${(c.values ?? []).join(', ')}`
  return `${subject} ${c.value ?? ''}`
}

/** Conditions in words, joined with "and"; empty for none. */
export const conditionsWords = (conditions: readonly Condition[] | undefined): string =>
  (conditions ?? []).map(conditionWords).join(' and ')
