/** Test data for the panel: every factory takes overrides and produces unique values where it matters. */
import type { Connection, Delivery, Mappings } from '#shared/api.ts'
import type { PlatformEvent, PlatformEventSummary } from '#shared/platform-events.ts'
import { defaultMappings } from '#shared/defaults.ts'

let seq = 0
const next = () => ++seq

export function aConnection(overrides: Partial<Connection> = {}): Connection {
  return {
    connected: true,
    status: 'connected',
    key_hint: '…a1b2',
    account: { id: 42, name: 'Ada’s Newsletter', primary_email_address: 'ada@example.com', plan_type: 'creator' },
    updated_at: '2026-11-20T10:00:00.000Z',
    ...overrides,
  }
}

export function aDisconnectedConnection(): Connection {
  return { connected: false, status: 'disconnected', key_hint: null, account: null, updated_at: null }
}

export function someMappings(edit: (m: Mappings) => void = () => {}): Mappings {
  const doc = defaultMappings()
  edit(doc)
  return doc
}

export function aDelivery(overrides: Partial<Delivery> = {}): Delivery {
  const n = next()
  return {
    id: `dlv_${n}`,
    event_id: `evt_${n}`,
    event_type: 'user.signed_up',
    member_email: `member${n}@example.com`,
    status: 'succeeded',
    attempts: 1,
    last_error: null,
    kit_requests: 2,
    steps: [],
    next_attempt_at: null,
    created_at: '2026-11-22T05:00:00.000Z',
    updated_at: '2026-11-22T05:00:01.000Z',
    ...overrides,
  }
}

/** A JWT-shaped token (unsigned) expiring `inSeconds` from now. */
export function aToken(inSeconds = 120, claims: Record<string, unknown> = {}): string {
  const b64 = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
  const now = Math.floor(Date.now() / 1000)
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'u_1', cid: 'c_demo', iat: now, exp: now + inSeconds, jti: next(), ...claims })}.sig`
}

export function aPlatformEvent(overrides: Partial<PlatformEvent> = {}): PlatformEvent {
  const n = next()
  return {
    id: `kitevt_${n}`,
    type: 'kit.subscriber.unsubscribed',
    state: 'failed',
    attempts: 14,
    last_error: 'http_500',
    member: { id: `m_${n}`, email: `member${n}@example.com` },
    data: {},
    observed_at: '2026-11-20T10:00:00.000Z',
    created_at: '2026-11-20T10:00:00.000Z',
    sent_at: null,
    next_attempt_at: null,
    ...overrides,
  }
}

/** The section's summary: configured and nothing counted unless told. */
export function aPlatformEventSummary(overrides: Partial<PlatformEventSummary> = {}): PlatformEventSummary {
  return { configured: true, since: '2026-11-07T12:00:00.000Z', counts: [], ...overrides }
}
