/**
 * Reading a member file for an initial sync, line by line as it streams in: CSV (a header line,
 * then one member a line) or JSON Lines (one object a line). A line that cannot be read stops the
 * file with its line number; a member that cannot be taken (bad email, duplicate) is refused on
 * its own, with the reason.
 */
import { StringDecoder } from 'node:string_decoder'
import { SYNC_COLUMNS, SYNC_FIELD_COLUMN, type SyncRefusedRow } from '#shared/api.ts'
import { subscriptionStatusKind } from '#shared/events.ts'
import { findNul, hasBidiOrFormatCharacter, hasControlCharacter } from '#shared/text.ts'
import { normaliseEmail, type MemberEvent } from './envelope.ts'
import { SNAPSHOT_TYPE } from './sync-snapshot.ts'

export type SyncFormat = 'csv' | 'jsonl'

/** The file cannot be taken at all: 400 (a line that cannot be read, an unknown column) or 413. */
export class SyncInputError extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface Line {
  /** 1-based, counting every line of the file (the CSV header is line 1). */
  number: number
  text: string
}

/** The longest line a member file may hold, in characters: as large as the largest event. */
export const MAX_LINE_CHARS = 256 * 1024

/**
 * The lines of a byte stream, decoded as UTF-8, without their line ends; blank lines are left
 * out (but counted). Throws SyncInputError 413 as soon as more than `maxBytes` arrived, and 400 as
 * soon as a line runs past MAX_LINE_CHARS, so an unended line is neither held nor scanned again
 * chunk after chunk.
 */
export async function* readLines(stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, maxBytes: number, describeLimit: string): AsyncGenerator<Line> {
  const decoder = new StringDecoder('utf8')
  let bytes = 0
  let pending = ''
  let number = 0
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    bytes += buffer.length
    if (bytes > maxBytes) throw new SyncInputError(413, 'payload_too_large', describeLimit)
    pending += decoder.write(buffer)
    let start = 0
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
      number += 1
      const text = pending.slice(start, end).replace(/\r$/, '')
      start = end + 1
      if (text.trim() !== '') yield { number, text: number === 1 ? text.replace(/^\uFEFF/, '') : text }
    }
    pending = pending.slice(start)
    if (pending.length > MAX_LINE_CHARS) {
      throw malformed(number + 1, `it is longer than ${MAX_LINE_CHARS / 1024} KiB, more than any member needs (is each member on a line of its own?)`)
    }
  }
  pending += decoder.end()
  if (pending.replace(/\r$/, '').trim() !== '') {
    number += 1
    const text = pending.replace(/\r$/, '')
    yield { number, text: number === 1 ? text.replace(/^\uFEFF/, '') : text }
  }
}

const malformed = (line: number, problem: string) => new SyncInputError(400, 'malformed_file', `Line ${line}: ${problem}. Fix that line and send the file again; nothing was queued.`)

/** One CSV line (RFC 4180 quoting, values may not span lines). */
export function parseCsvLine(text: string, line: number): string[] {
  const values: string[] = []
  let i = 0
  for (;;) {
    if (text[i] === '"') {
      let value = ''
      i += 1
      for (;;) {
        if (i >= text.length) throw malformed(line, 'a quoted value is not closed (a value cannot span lines)')
        const c = text[i] as string
        if (c === '"') {
          if (text[i + 1] === '"') {
            value += '"'
            i += 2
            continue
          }
          i += 1
          break
        }
        value += c
        i += 1
      }
      values.push(value)
      if (i === text.length) return values
      if (text[i] !== ',') throw malformed(line, `value ${values.length} has text after its closing quote`)
      i += 1
    } else {
      const comma = text.indexOf(',', i)
      const value = comma === -1 ? text.slice(i) : text.slice(i, comma)
      if (value.includes('"')) throw malformed(line, `value ${values.length + 1} holds a quote; quote the whole value and double the quotes inside it`)
      values.push(value)
      if (comma === -1) return values
      i = comma + 1
    }
  }
}

export const isKnownColumn = (column: string) => (SYNC_COLUMNS as readonly string[]).includes(column) || SYNC_FIELD_COLUMN.test(column)

/** One member as read: column → value; null is an explicit empty value (JSON null). */
export interface RawRow {
  line: number
  values: Record<string, string | null>
}

/** Reads records from a file's lines; `onUnknownColumn` is told each unknown column once. */
export async function* readRows(lines: AsyncIterable<Line>, format: SyncFormat, onUnknownColumn: (column: string, line: number) => void): AsyncGenerator<RawRow> {
  const unknown = new Set<string>()
  const noteColumn = (column: string, line: number) => {
    if (isKnownColumn(column) || unknown.has(column)) return
    unknown.add(column)
    onUnknownColumn(column, line)
  }
  if (format === 'csv') {
    let header: string[] | null = null
    for await (const { number, text } of lines) {
      const values = parseCsvLine(text, number)
      if (header === null) {
        header = values.map((v) => v.trim().toLowerCase())
        const twice = header.find((c, i) => header?.indexOf(c) !== i)
        if (twice !== undefined) throw malformed(number, `the header names the column "${twice}" twice`)
        if (!header.includes('email') || !header.includes('member_id')) throw malformed(number, 'the header must name the columns email and member_id')
        for (const column of header) noteColumn(column, number)
        continue
      }
      if (values.length !== header.length) {
        throw malformed(number, `it has ${values.length} values but the header names ${header.length} columns`)
      }
      const record: Record<string, string | null> = {}
      header.forEach((column, i) => {
        const value = (values[i] as string).trim()
        // CSV cannot say "empty" apart from "not given": an empty cell leaves the value as it is.
        if (value !== '') record[column] = value
      })
      yield { line: number, values: record }
    }
    return
  }
  for await (const { number, text } of lines) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw malformed(number, 'it is not valid JSON')
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed(number, 'it is not a JSON object')
    const record: Record<string, string | null> = {}
    for (const [key, value] of Object.entries(parsed)) {
      noteColumn(key, number)
      if (value === null || typeof value === 'string') record[key] = value
      else if (typeof value === 'number' && Number.isFinite(value)) record[key] = String(value)
      else throw malformed(number, `"${key}" must be a string, a number or null`)
    }
    yield { line: number, values: record }
  }
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
    if (accessLevel !== null && (accessLevel.length > MAX_ID || hasControlCharacter(accessLevel))) return refuse('access_level is longer than 200 characters or holds a control character')
    const emailLine = this.emails.get(email)
    if (emailLine !== undefined) return refuse(`duplicate email: line ${emailLine} has the same address`)
    const idLine = this.ids.get(memberId)
    if (idLine !== undefined) return refuse(`duplicate member_id: line ${idLine} has the same member`)
    this.emails.set(email, row.line)
    this.ids.set(memberId, row.line)
    const fields: Record<string, string | null> = {}
    for (const [key, value] of Object.entries(v)) if (SYNC_FIELD_COLUMN.test(key)) fields[key] = value
    return { line: row.line, memberId, email, firstName, fields, plan: v.subscription_plan?.trim() || null, status, accessLevel }
  }
}

export const isRefused = (r: SnapshotMember | SyncRefusedRow): r is SyncRefusedRow => 'reason' in r

/** The stored event of one member of a sync: a member.snapshot at the sync's start time. */
export function snapshotEvent(member: SnapshotMember, o: { id: string; communityId: string; time: number; syncId: string | null }): MemberEvent {
  const subscription = member.plan !== null || member.status !== null
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
      },
      ...(subscription ? { subscription } : {}),
      ...(member.accessLevel !== null ? { access: { level: member.accessLevel } } : {}),
    },
  }
}
