/**
 * The one judge of a member file, for the dry run and the import alike: it reads the file as it
 * streams in, maps its columns to member fields, and yields each member taken or refused. Whatever
 * refuses the file refuses it for both (a record that cannot be read, columns that cannot be
 * mapped, too many bytes or members, no member at all), so a preview never accepts a file the
 * import then refuses.
 */
import { SYNC_MAX_COLUMNS, type SyncRefusedRow } from '#shared/api.ts'
import type { ColumnResolver } from './sync-columns.ts'
import {
  malformed,
  readCsvRecords,
  readLines,
  RowChecker,
  SyncInputError,
  type RawRow,
  type SnapshotMember,
  type SyncFormat,
} from './sync-input.ts'

export interface MemberFile {
  format: SyncFormat
  body: AsyncIterable<Buffer | string>
  /** Decides each column's member field; after reading, it lists the file's columns. */
  columns: ColumnResolver
  maxBytes: number
  maxRows: number
  /** The words of the 413 answers. */
  tooLarge: string
  tooManyRows: string
}

const emptyFile = () =>
  new SyncInputError(
    400,
    'empty_file',
    'The member file holds no members: a CSV needs a header line (email,member_id,…) and one member a line below it.',
  )

/** The member field of each header position (null: ignored). */
function readHeader(values: string[], line: number, columns: ColumnResolver): (string | null)[] {
  if (values.length > SYNC_MAX_COLUMNS)
    throw malformed(line, `the header names ${values.length} columns, more than the ${SYNC_MAX_COLUMNS} a member file may have`)
  const names = values.map((v) => v.trim())
  const twice = names.find((c, i) => c !== '' && names.indexOf(c) !== i)
  if (twice !== undefined) throw malformed(line, `the header names the column "${twice}" twice`)
  // A column without a name cannot be mapped: it is ignored.
  const fields = names.map((name) => (name === '' ? null : columns.field(name)))
  const missing = columns.missing()
  if (missing.length > 0) {
    throw new SyncInputError(
      400,
      'missing_column',
      `No column of the file is mapped to ${missing.join(' or ')}: map the file's column for ${missing.length === 1 ? 'it' : 'each'} and send the file again; nothing was queued.`,
      columns.columns(),
    )
  }
  return fields
}

async function* csvRows(file: MemberFile): AsyncGenerator<RawRow> {
  let header: (string | null)[] | null = null
  for await (const { line, values } of readCsvRecords(file.body, file.maxBytes, file.tooLarge)) {
    if (header === null) {
      header = readHeader(values, line, file.columns)
      continue
    }
    if (values.length !== header.length)
      throw malformed(line, `it has ${values.length} values but the header names ${header.length} columns`)
    const record: Record<string, string | null> = {}
    header.forEach((field, i) => {
      if (field === null) return
      const value = (values[i] as string).trim()
      // CSV cannot say "empty" apart from "not given": an empty cell leaves the value as it is.
      if (value !== '') record[field] = value
    })
    yield { line, values: record }
  }
}

async function* jsonRows(file: MemberFile): AsyncGenerator<RawRow> {
  for await (const { number, text } of readLines(file.body, file.maxBytes, file.tooLarge)) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw malformed(number, 'it is not valid JSON')
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed(number, 'it is not a JSON object')
    const record: Record<string, string | null> = {}
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      const field = file.columns.field(key)
      if (field === null) continue
      if (value === null || typeof value === 'string') record[field] = value
      else if (typeof value === 'number' && Number.isFinite(value)) record[field] = String(value)
      else if (typeof value === 'boolean' && field === 'consent') record[field] = String(value)
      else throw malformed(number, `"${key}" must be a string, a number or null`)
    }
    yield { line: number, values: record }
  }
}

/** Each member of the file, taken or refused (with the reason); throws SyncInputError to refuse the whole file. */
export async function* readMemberFile(file: MemberFile): AsyncGenerator<SnapshotMember | SyncRefusedRow> {
  const checker = new RowChecker()
  let rows = 0
  for await (const row of file.format === 'csv' ? csvRows(file) : jsonRows(file)) {
    if (++rows > file.maxRows) throw new SyncInputError(413, 'payload_too_large', file.tooManyRows)
    yield checker.check(row)
  }
  if (rows === 0) throw emptyFile()
}
