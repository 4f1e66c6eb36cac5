/**
 * The member event envelope: CloudEvents 1.0 JSON with per-type data. Validation
 * names the exact field at fault so the platform's engineers can fix the sender.
 */
import { isEventType, subscriptionStatusKind } from '#shared/events.ts'
import { findNul, hasBidiOrFormatCharacter, hasControlCharacter } from '#shared/text.ts'

export interface MemberData {
  id: string
  email: string
  first_name?: string | null
  fields?: Record<string, string | null>
  /** Absent: the platform does not know. `at`: when the member gave or withdrew it. */
  consent?: MemberConsent | null
}

export interface MemberConsent {
  marketing: boolean
  at?: string
}

export interface MemberEvent {
  specversion: '1.0'
  id: string
  source: string
  type: string
  time?: string
  communityid: string
  subject?: string
  data: {
    member: MemberData
    /** Required for subscription.* events; a member.snapshot may carry one without an id. */
    subscription?: { id?: string; plan?: string; status?: string }
    access?: { level: string }
  }
}

export class InvalidEvent extends Error {}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const MAX_ID = 200

type Obj = Record<string, unknown>
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function requireString(obj: Obj, key: string, path: string, max = 1000): string {
  const value = obj[key]
  if (value === undefined || value === null) throw new InvalidEvent(`${path}${key} is required`)
  if (typeof value !== 'string' || value.trim() === '') throw new InvalidEvent(`${path}${key} must be a non-empty string`)
  if (value.length > max) throw new InvalidEvent(`${path}${key} is longer than ${max} characters`)
  return value
}

function optionalString(obj: Obj, key: string, path: string): void {
  const value = obj[key]
  if (value !== undefined && value !== null && typeof value !== 'string') throw new InvalidEvent(`${path}${key} must be a string`)
}

/** Checks a parsed body; returns it typed, or throws InvalidEvent naming the field. */
export function validateEnvelope(body: unknown): MemberEvent {
  if (!isObject(body)) throw new InvalidEvent('the body must be a JSON object')
  if (body.specversion !== '1.0') throw new InvalidEvent('specversion must be "1.0"')
  requireString(body, 'id', '', MAX_ID)
  requireString(body, 'source', '')
  const type = requireString(body, 'type', '', MAX_ID)
  requireString(body, 'communityid', '', MAX_ID)
  optionalString(body, 'subject', '')
  if (body.time !== undefined) {
    if (typeof body.time !== 'string' || Number.isNaN(Date.parse(body.time))) {
      throw new InvalidEvent('time must be an RFC 3339 timestamp')
    }
  }
  if (!isObject(body.data)) throw new InvalidEvent('data is required and must be an object')
  const data = body.data
  if (!isObject(data.member)) throw new InvalidEvent('data.member is required and must be an object')
  const member = data.member
  requireString(member, 'id', 'data.member.', MAX_ID)
  const email = requireString(member, 'email', 'data.member.', 320)
  if (hasControlCharacter(email) || hasBidiOrFormatCharacter(email)) {
    throw new InvalidEvent('data.member.email contains a control or bidirectional character')
  }
  if (!EMAIL.test(email.trim())) throw new InvalidEvent('data.member.email is not an email address')
  optionalString(member, 'first_name', 'data.member.')
  // Names in right-to-left scripts may need bidirectional marks; control characters are never part of a name.
  if (typeof member.first_name === 'string' && hasControlCharacter(member.first_name)) {
    throw new InvalidEvent('data.member.first_name contains a control character')
  }
  if (member.fields !== undefined && member.fields !== null) {
    if (!isObject(member.fields)) throw new InvalidEvent('data.member.fields must be an object')
    for (const [key, value] of Object.entries(member.fields)) {
      if (value !== null && typeof value !== 'string') {
        throw new InvalidEvent(`data.member.fields.${key} must be a string or null`)
      }
    }
  }
  if (member.consent !== undefined && member.consent !== null) validateConsent(member.consent)
  if (type.startsWith('subscription.') && isEventType(type)) {
    if (!isObject(data.subscription)) throw new InvalidEvent(`data.subscription is required for ${type}`)
    requireString(data.subscription, 'id', 'data.subscription.', MAX_ID)
    optionalString(data.subscription, 'plan', 'data.subscription.')
    optionalString(data.subscription, 'status', 'data.subscription.')
  }
  if (type.startsWith('access.') && isEventType(type)) {
    if (!isObject(data.access)) throw new InvalidEvent(`data.access is required for ${type}`)
    requireString(data.access, 'level', 'data.access.', MAX_ID)
  }
  if (type === 'member.snapshot') validateSnapshotData(data)
  // Nothing an event carries needs U+0000, and PostgreSQL cannot store it: never a valid event.
  const nul = findNul(body)
  if (nul !== null) throw new InvalidEvent(`${nul} holds a NUL character (\\u0000)`)
  return body as unknown as MemberEvent
}

function validateConsent(consent: unknown): void {
  if (!isObject(consent)) throw new InvalidEvent('data.member.consent must be an object')
  if (typeof consent.marketing !== 'boolean') throw new InvalidEvent('data.member.consent.marketing must be true or false')
  if (consent.at !== undefined && consent.at !== null && (typeof consent.at !== 'string' || Number.isNaN(Date.parse(consent.at)))) {
    throw new InvalidEvent('data.member.consent.at must be an RFC 3339 timestamp')
  }
}

/**
 * A member.snapshot is the member as they are now: optionally their subscription (plan and a
 * status Kit tags can follow) and access level, neither required.
 */
function validateSnapshotData(data: Obj): void {
  if (data.subscription !== undefined && data.subscription !== null) {
    if (!isObject(data.subscription)) throw new InvalidEvent('data.subscription must be an object')
    for (const key of ['id', 'plan', 'status']) optionalString(data.subscription, key, 'data.subscription.')
    const status = data.subscription.status as string | undefined
    if (subscriptionStatusKind(status) === 'unknown') {
      throw new InvalidEvent(`data.subscription.status "${status}" is not one of active, trialing, past_due, canceled, cancelled, expired`)
    }
  }
  if (data.access !== undefined && data.access !== null) {
    if (!isObject(data.access)) throw new InvalidEvent('data.access must be an object')
    requireString(data.access, 'level', 'data.access.', MAX_ID)
  }
}

export const normaliseEmail = (email: string) => email.trim().toLowerCase()
