/**
 * Which member field each column of a member file fills. A file from another platform names its
 * columns its own way ("Email Address", "Company"): the owner maps them, the mapping is sent with
 * the upload and remembered per community for the next import. Without one, a column fills the
 * member field of its own name (or of a common other spelling), and any other column is ignored.
 */
import { SYNC_COLUMNS, SYNC_FIELD_COLUMN, SYNC_MAX_COLUMNS, type SyncColumn, type SyncColumnMapping } from '#shared/api.ts'
import { hasControlCharacter } from '#shared/text.ts'
import { SyncInputError } from './sync-input.ts'

export const MAX_COLUMN_NAME = 200
/** The fields a CSV file must fill: without them no member can be taken. */
export const REQUIRED_FIELDS = ['email', 'member_id'] as const

export const isMemberField = (field: string) => (SYNC_COLUMNS as readonly string[]).includes(field) || SYNC_FIELD_COLUMN.test(field)

/** Other spellings of a member field that exports commonly use, after `slug`. */
const OTHER_SPELLINGS: Readonly<Record<string, string>> = {
  email_address: 'email',
  e_mail: 'email',
  id: 'member_id',
  member: 'member_id',
  memberid: 'member_id',
  firstname: 'first_name',
  marketing_consent: 'consent',
  accepts_marketing: 'consent',
  accepts_email_marketing: 'consent',
  consent_date: 'consent_at',
  consented_at: 'consent_at',
}

const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')

/** The member field a column fills when nothing says otherwise, or null (ignored). */
export function suggestedField(column: string): string | null {
  const lower = column.trim().toLowerCase()
  if (isMemberField(lower)) return lower
  const key = slug(column)
  if (isMemberField(key)) return key
  return OTHER_SPELLINGS[key] ?? null
}

const mappable = (column: string) => column.length <= MAX_COLUMN_NAME && !hasControlCharacter(column)

const invalidMapping = (problem: string, columns?: SyncColumn[]) =>
  new SyncInputError(400, 'invalid_column_mapping', `The column mapping ${problem}; nothing was queued.`, columns)

/**
 * The mapping sent with an upload (the `columns` query parameter: a JSON object, column → member
 * field or null). Columns it does not name are ignored.
 */
export function parseColumnMapping(text: string): SyncColumnMapping {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw invalidMapping('is not valid JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalidMapping('must be a JSON object: column → member field')
  const entries = Object.entries(parsed as Record<string, unknown>)
  if (entries.length > SYNC_MAX_COLUMNS) throw invalidMapping(`names more than ${SYNC_MAX_COLUMNS} columns`)
  const mapping: SyncColumnMapping = {}
  for (const [column, field] of entries) {
    if (!mappable(column)) throw invalidMapping(`names a column longer than ${MAX_COLUMN_NAME} characters or holding a control character`)
    if (field !== null && (typeof field !== 'string' || !isMemberField(field))) {
      throw invalidMapping(`maps "${column}" to ${JSON.stringify(field)}, which is not a member field (${SYNC_COLUMNS.join(', ')} or mk_…)`)
    }
    mapping[column] = field
  }
  return mapping
}

/**
 * Decides the field of each column as a file reveals them: the mapping sent with the upload when
 * there is one (complete: a column it does not name is ignored), else the community's remembered
 * mapping, else the suggestion. Two columns may not fill one field.
 */
export class ColumnResolver {
  private readonly byColumn = new Map<string, string | null>()
  private readonly byField = new Map<string, string>()

  constructor(
    private readonly sent: SyncColumnMapping | null,
    private readonly remembered: SyncColumnMapping,
  ) {}

  private choose(column: string): string | null {
    if (this.sent) return Object.hasOwn(this.sent, column) ? (this.sent[column] ?? null) : null
    if (Object.hasOwn(this.remembered, column)) {
      const field = this.remembered[column] ?? null
      return field === null || isMemberField(field) ? field : null
    }
    return suggestedField(column)
  }

  /**
   * The field a column fills (deciding it the first time the column is seen). A name no mapping
   * can hold (too long, a control character) is ignored, and neither listed nor remembered.
   */
  field(column: string): string | null {
    const known = this.byColumn.get(column)
    if (known !== undefined) return known
    if (this.byColumn.size >= SYNC_MAX_COLUMNS || !mappable(column)) return null
    const field = this.choose(column)
    this.byColumn.set(column, field)
    if (field !== null) {
      const other = this.byField.get(field)
      if (other !== undefined) {
        throw invalidMapping(
          `has two columns filling ${field}: "${other}" and "${column}". Map one of them to another field or ignore it`,
          this.columns(),
        )
      }
      this.byField.set(field, column)
    }
    return field
  }

  /** The columns seen so far, in the file's order, with their fields. */
  columns(): SyncColumn[] {
    return [...this.byColumn.entries()].map(([name, field]) => ({ name, field }))
  }

  /** The required fields no column fills. */
  missing(): string[] {
    return REQUIRED_FIELDS.filter((f) => !this.byField.has(f))
  }

  /** What to remember for the community's next import: this file's columns over what was remembered. */
  toRemember(): SyncColumnMapping {
    const mapping: SyncColumnMapping = Object.fromEntries(this.byColumn)
    for (const [column, field] of Object.entries(this.remembered)) {
      if (Object.keys(mapping).length >= SYNC_MAX_COLUMNS) break
      if (!Object.hasOwn(mapping, column)) mapping[column] = field
    }
    return mapping
  }
}

/** A stored mapping, read defensively: anything that is not a column → field entry is left out. */
export function storedColumnMapping(document: string | undefined): SyncColumnMapping {
  if (document === undefined) return {}
  const parsed: unknown = JSON.parse(document)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {}
  return Object.fromEntries(Object.entries(parsed).filter(([, f]) => f === null || (typeof f === 'string' && isMemberField(f))))
}
