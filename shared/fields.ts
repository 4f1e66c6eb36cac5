/** The platform's member fields the panel offers first. Any `mk_` + lower-case name is accepted. */
export const MK_FIELD_CATALOGUE = [
  { key: 'mk_subscription_plan', description: 'Plan of the current subscription' },
  { key: 'mk_access_level', description: 'Current access level' },
  { key: 'mk_first_name', description: 'First name' },
  { key: 'mk_last_name', description: 'Last name' },
  { key: 'mk_member_since', description: 'Date the member joined' },
  { key: 'mk_country', description: 'Country' },
] as const

export const MK_FIELD_PATTERN = /^mk_[a-z0-9_]{1,60}$/

/**
 * The panel's guess at the key Kit will give a custom field that does not exist yet, so a new
 * field mapping can be saved before Kit has the field. Only a placeholder: the server never uses
 * it to write — deliveries find the field by its label in Kit's own list, or create it and take
 * the key from Kit's answer, and then store that key in the saved mapping.
 */
export function kitFieldKeyFromLabel(label: string): string {
  return label
    .normalize('NFKD')
    .replace(/\P{ASCII}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
}
