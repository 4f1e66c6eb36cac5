/**
 * Reading a member file for an initial sync as it streams in: CSV records (a maintained parser:
 * RFC 4180 quoting, values may span lines) or JSON Lines (one object a line), then each member
 * checked on its own. A record that cannot be read stops the file with its line number; a member
 * that cannot be taken (bad email, duplicate) is refused on its own, with the reason.
 */
import { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { CsvError, parse } from 'csv-parse'
import { SYNC_FIELD_COLUMN, type SyncColumn, type SyncRefusedRow } from '#shared/api.ts'
import { subscriptionStatusKind } from '#shared/events.ts'
import { findNul, hasBidiOrFormatCharacter, hasControlCharacter } from '#shared/text.ts'
import { normaliseEmail, type MemberEvent } from '../core/envelope.ts'
import { SNAPSHOT_TYPE } from '../core/snapshot.ts'

export type SyncFormat = 'csv' | 'jsonl'

/**
 * The file cannot be taken at all: 400 (a record that cannot be read, columns that cannot be
 * mapped) or 413. `columns`, for the column codes: the file's columns and the mapping used.
 */
export class SyncInputError extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: string,
    message: string,
    readonly columns?: SyncColumn[],
  ) {
    super(message)
  }
}

export interface Line {
  /** 1-based, counting every line of the file (the CSV header is line 1). */
  number: number
  text: string
}

/** The longest line (JSON Lines) or record (CSV) a member file may hold, in characters: as large as the largest event. */
export const MAX_LINE_CHARS = 256 * 1024

export const malformed = (line: number, problem: string) =>
  new SyncInputError(400, 'malformed_file', `Line ${line}: ${problem}. Fix that line and send the file again; nothing was queued.`)

const tooLong = (line: number) =>
  malformed(line, `it is longer than ${MAX_LINE_CHARS / 1024} KiB, more than any member needs (is each member on a line of its own?)`)

/**
 * The bytes of a stream, stopping with 413 as soon as more than `maxBytes` arrived. The stream is
 * read by hand, not with `for await`, so stopping early leaves the request as it is rather than
 * destroying it: the client still gets the answer that says why.
 */
async function* limitBytes(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  maxBytes: number,
  describeLimit: string,
): AsyncGenerator<Buffer> {
  const chunks = Symbol.asyncIterator in stream ? stream[Symbol.asyncIterator]() : stream[Symbol.iterator]()
  let bytes = 0
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
    const buffer = typeof next.value === 'string' ? Buffer.from(next.value) : next.value
    bytes += buffer.length
    if (bytes > maxBytes) throw new SyncInputError(413, 'payload_too_large', describeLimit)
    yield buffer
  }
}

/**
 * The lines of a byte stream (JSON Lines), decoded as UTF-8, without their line ends; blank lines
 * are left out (but counted). Throws SyncInputError 413 as soon as more than `maxBytes` arrived,
 * and 400 as soon as a line runs past MAX_LINE_CHARS, so an unended line is neither held nor
 * scanned again chunk after chunk.
 */
export async function* readLines(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  maxBytes: number,
  describeLimit: string,
): AsyncGenerator<Line> {
  const decoder = new StringDecoder('utf8')
  let pending = ''
  let number = 0
  for await (const buffer of limitBytes(stream, maxBytes, describeLimit)) {
    pending += decoder.write(buffer)
    let start = 0
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
      number += 1
      const text = pending.slice(start, end).replace(/\r$/, '')
      start = end + 1
      if (text.trim() !== '') yield { number, text: number === 1 ? text.replace(/^\uFEFF/, '') : text }
    }
    pending = pending.slice(start)
    if (pending.length > MAX_LINE_CHARS) throw tooLong(number + 1)
  }
  pending += decoder.end()
  if (pending.replace(/\r$/, '').trim() !== '') {
    number += 1
    const text = pending.replace(/\r$/, '')
    yield { number, text: number === 1 ? text.replace(/^\uFEFF/, '') : text }
  }
}

/** One CSV record: its values, and the line it starts on. */
export interface CsvRecord {
  line: number
  values: string[]
}

/** Line breaks inside a value as an editor counts them, and as the parser does (CR and LF each one). */
function breaks(values: string[]): { lines: number; parserLines: number } {
  let lines = 0
  let parserLines = 0
  for (const value of values) {
    if (!value.includes('\n') && !value.includes('\r')) continue
    for (const m of value.matchAll(/\r\n|\r|\n/g)) {
      lines += 1
      parserLines += m[0].length
    }
  }
  return { lines, parserLines }
}

/** A parser error in the project's words, at the line it concerns. */
function csvProblem(err: unknown, recordStart: number): unknown {
  if (!(err instanceof CsvError)) return err
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return malformed(recordStart, 'a quoted value is not closed before the end of the file')
    case 'CSV_MAX_RECORD_SIZE':
      return malformed(
        recordStart,
        `it is longer than ${MAX_LINE_CHARS / 1024} KiB, more than any member needs (is a quoted value left open?)`,
      )
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return malformed(recordStart, 'a quoted value has text after its closing quote')
    default:
      return malformed(recordStart, 'it cannot be read as CSV')
  }
}

/**
 * The records of a CSV byte stream, read by csv-parse as the bytes arrive: standard quoting
 * (quoted values may hold commas, doubled quotes and line breaks; a stray quote inside an unquoted
 * value is kept as it is), a byte-order mark, CRLF or LF, blank lines left out. Stops with 413 past
 * `maxBytes` and with 400 `malformed_file` as soon as one record passes MAX_LINE_CHARS, so neither
 * an endless line nor an unclosed quote is held.
 */
export async function* readCsvRecords(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  maxBytes: number,
  describeLimit: string,
): AsyncGenerator<CsvRecord> {
  // Lines as an editor numbers them: the parser counts a quoted CRLF as two lines. `last*` is where
  // the last record parsed ended, and the blank lines skipped until then: a record the parser
  // refuses starts after them. Noted as each record is parsed, ahead of the records read out, so
  // each record's first line waits in `starts` until the record is read.
  let overcount = 0
  let lastLine = 0
  let lastEmpty = 0
  let starts: number[] = []
  let next = 0
  const parser = parse({
    bom: true,
    skip_empty_lines: true,
    relax_quotes: true,
    relax_column_count: true,
    record_delimiter: ['\r\n', '\n'],
    max_record_size: MAX_LINE_CHARS,
    on_record: (values: string[], context) => {
      const inside = breaks(values)
      overcount += inside.parserLines - inside.lines
      lastLine = context.lines - overcount
      lastEmpty = context.empty_lines
      starts.push(lastLine - inside.lines)
      return values
    },
  })
  // One chunk read ahead at most: a refused file stops being read where it is refused.
  const source = Readable.from(limitBytes(stream, maxBytes, describeLimit), { highWaterMark: 1 })
  source.on('error', (err) => parser.destroy(err))
  source.pipe(parser)
  try {
    for await (const values of parser as AsyncIterable<string[]>) {
      const line = starts[next++] as number
      if (next === starts.length) {
        starts = []
        next = 0
      }
      yield { line, values }
    }
  } catch (err) {
    throw csvProblem(err, lastLine + 1 + (parser.info.empty_lines - lastEmpty))
  } finally {
    source.destroy()
  }
}

/** One member as read: member field → value; null is an explicit empty value (JSON null). */
export interface RawRow {
  line: number
  values: Record<string, string | null>
}

/** A member the sync takes. */
export interface SnapshotMember {
  line: number
  memberId: string
  email: string
  firstName: string | null
  fields: Record<string, string | null>
  plan: string | null
  status: string | null
  accessLevel: string | null
  /** The `consent` column: agreed to marketing email or not, and when (RFC 3339); null: not known. */
  consent: { marketing: boolean; at: string | null } | null
}

/** What the `consent` column may hold, lower-cased; an empty cell (or JSON null) means "not known". */
const CONSENT_VALUES: ReadonlyMap<string, boolean> = new Map([
  ['true', true],
  ['yes', true],
  ['1', true],
  ['false', false],
  ['no', false],
  ['0', false],
])

/** An RFC 3339 time with its offset, or a date alone (read as midnight UTC). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/

/** A member's consent from the two columns: the value, an error in words, or null (not known). */
function readConsent(value: string | null | undefined, at: string | null | undefined): SnapshotMember['consent'] | string {
  const given = value?.trim().toLowerCase() ?? ''
  if (given === '') return null
  const marketing = CONSENT_VALUES.get(given)
  if (marketing === undefined) return `consent "${value?.trim()}" is not one of true, false, yes, no, 1, 0 (leave it empty when not known)`
  const when = at?.trim() ?? ''
  if (when === '') return { marketing, at: null }
  const ms = RFC3339.test(when) ? Date.parse(when) : Number.NaN
  if (Number.isNaN(ms)) return `consent_at "${when}" is not an RFC 3339 time such as 2026-11-22T05:00:00Z`
  return { marketing, at: new Date(ms).toISOString() }
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const MAX_ID = 200

/** Checks rows one by one and remembers emails and member ids seen, to refuse duplicates. */
export class RowChecker {
  private readonly emails = new Map<string, number>()
  private readonly ids = new Map<string, number>()

  check(row: RawRow): SnapshotMember | SyncRefusedRow {
    const v = row.values
    const rawEmail = v.email ?? null
    const memberId = v.member_id?.trim() || null
    const refuse = (reason: string): SyncRefusedRow => ({ line: row.line, email: rawEmail, member_id: memberId, reason })
    if (memberId === null) return refuse('member_id is missing')
    const nul = findNul(v)
    if (nul !== null) return refuse(`${nul} holds a NUL character`)
    if (memberId.length > MAX_ID) return refuse(`member_id is longer than ${MAX_ID} characters`)
    if (rawEmail === null || rawEmail.trim() === '') return refuse('email is missing')
    if (rawEmail.length > 320 || hasControlCharacter(rawEmail) || hasBidiOrFormatCharacter(rawEmail) || !EMAIL.test(rawEmail.trim())) {
      return refuse('email is not an email address')
    }
    const email = normaliseEmail(rawEmail)
    const firstName = v.first_name ?? null
    if (firstName !== null && hasControlCharacter(firstName)) return refuse('first_name contains a control character')
    const status = v.subscription_status?.trim() || null
    if (subscriptionStatusKind(status) === 'unknown') {
      return refuse(`subscription_status "${status}" is not one of active, trialing, past_due, canceled, cancelled, expired`)
    }
    const accessLevel = v.access_level?.trim() || null
    if (accessLevel !== null && (accessLevel.length > MAX_ID || hasControlCharacter(accessLevel)))
      return refuse('access_level is longer than 200 characters or holds a control character')
    const consent = readConsent(v.consent, v.consent_at)
    if (typeof consent === 'string') return refuse(consent)
    const emailLine = this.emails.get(email)
    if (emailLine !== undefined) return refuse(`duplicate email: line ${emailLine} has the same address`)
    const idLine = this.ids.get(memberId)
    if (idLine !== undefined) return refuse(`duplicate member_id: line ${idLine} has the same member`)
    this.emails.set(email, row.line)
    this.ids.set(memberId, row.line)
    const fields: Record<string, string | null> = {}
    for (const [key, value] of Object.entries(v)) if (SYNC_FIELD_COLUMN.test(key)) fields[key] = value
    return { line: row.line, memberId, email, firstName, fields, plan: v.subscription_plan?.trim() || null, status, accessLevel, consent }
  }
}

export const isRefused = (r: SnapshotMember | SyncRefusedRow): r is SyncRefusedRow => 'reason' in r

/** The stored event of one member of a sync: a member.snapshot at the sync's start time. */
export function snapshotEvent(
  member: SnapshotMember,
  o: { id: string; communityId: string; time: number; syncId: string | null },
): MemberEvent {
  const subscription =
    member.plan !== null || member.status !== null
      ? { ...(member.plan !== null ? { plan: member.plan } : {}), ...(member.status !== null ? { status: member.status } : {}) }
      : undefined
  return {
    specversion: '1.0',
    id: o.id,
    source: o.syncId ? `syncs/${o.syncId}` : 'syncs',
    type: SNAPSHOT_TYPE,
    time: new Date(o.time).toISOString(),
    communityid: o.communityId,
    subject: `members/${member.memberId}`,
    data: {
      member: {
        id: member.memberId,
        email: member.email,
        ...(member.firstName !== null ? { first_name: member.firstName } : {}),
        ...(Object.keys(member.fields).length ? { fields: member.fields } : {}),
        ...(member.consent
          ? { consent: { marketing: member.consent.marketing, ...(member.consent.at !== null ? { at: member.consent.at } : {}) } }
          : {}),
      },
      ...(subscription ? { subscription } : {}),
      ...(member.accessLevel !== null ? { access: { level: member.accessLevel } } : {}),
    },
  }
}
