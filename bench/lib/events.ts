/**
 * Member events as the platform sends them: CloudEvents 1.0 JSON signed per Standard Webhooks
 * (HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<raw body>" with the `whsec_` key).
 */
import { createHmac, randomUUID } from 'node:crypto'

export type MemberEvent = {
  specversion: '1.0'
  id: string
  source: string
  type: string
  time: string
  communityid: string
  subject: string
  data: Record<string, unknown>
}

export interface Member {
  communityId: string
  id: string
  email: string
  firstName: string
}

export const PLAN = 'pro-annual'
export const ACCESS_LEVEL = 'gold'

export function member(communityId: string, label: string, index: number): Member {
  return { communityId, id: `m_${label}_${index}`, email: `${label}.${index}@example.com`, firstName: `Member ${index}` }
}

export const newEventId = (prefix = 'evt') => `${prefix}_${randomUUID().replace(/-/g, '')}`

export function event(m: Member, type: string, time: number, data: Record<string, unknown> = {}): MemberEvent {
  return {
    specversion: '1.0',
    id: newEventId(),
    source: `https://appstation.example/communities/${m.communityId}`,
    type,
    time: new Date(time).toISOString(),
    communityid: m.communityId,
    subject: `members/${m.id}`,
    data: { member: { id: m.id, email: m.email, first_name: m.firstName }, ...data },
  }
}

/**
 * The lifecycle mix: signed up (with the mk_subscription_plan field), subscription started,
 * access granted, subscription canceled — one millisecond apart from `t0`.
 */
export function lifecycle(m: Member, t0: number): MemberEvent[] {
  const subscription = (status: string) => ({ subscription: { id: `s_${m.id}`, plan: PLAN, status } })
  const signedUp = event(m, 'user.signed_up', t0)
  ;(signedUp.data.member as Record<string, unknown>).fields = { mk_subscription_plan: PLAN }
  return [
    signedUp,
    event(m, 'subscription.started', t0 + 1, subscription('active')),
    event(m, 'access.granted', t0 + 2, { access: { level: ACCESS_LEVEL } }),
    event(m, 'subscription.canceled', t0 + 3, subscription('canceled')),
  ]
}

/** What the default mappings leave in Kit after the whole lifecycle mix. */
export const LIFECYCLE_TAGS = ['Access: gold', 'Cancelled', 'New Member']
export const LIFECYCLE_FIELDS = { subscription_plan: PLAN }

/**
 * Lifecycle events for `count` members, interleaved the way a busy community produces them:
 * every member's events in time order, members mixed.
 */
export function lifecycleBacklog(
  communityId: string,
  label: string,
  count: number,
  t0 = Date.now() - 60_000,
): { members: Member[]; events: MemberEvent[] } {
  const members = Array.from({ length: count }, (_, i) => member(communityId, label, i))
  const perMember = members.map((m, i) => lifecycle(m, t0 + i * 10))
  const events: MemberEvent[] = []
  for (let step = 0; step < 4; step++) for (const list of perMember) events.push(list[step] as MemberEvent)
  return { members, events }
}

export function signature(hmacKey: string, id: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', Buffer.from(hmacKey, 'base64'))
  mac.update(`${id}.${timestamp}.`)
  mac.update(body)
  return `v1,${mac.digest('base64')}`
}

export function signedHeaders(
  hmacKey: string,
  id: string,
  body: string | Buffer,
  timestamp = Math.floor(Date.now() / 1000),
): Record<string, string> {
  return {
    'content-type': 'application/cloudevents+json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature(hmacKey, id, timestamp, body),
  }
}

/** Posts one event; resolves to the HTTP status, or 0 when no answer came (connection refused or reset). */
export async function postEvent(baseUrl: string, hmacKey: string, e: MemberEvent): Promise<number> {
  const body = JSON.stringify(e)
  try {
    const response = await fetch(`${baseUrl}/events`, { method: 'POST', body, headers: signedHeaders(hmacKey, e.id, body) })
    await response.arrayBuffer()
    return response.status
  } catch {
    return 0
  }
}

/** Posts events with a few requests in flight; statuses come back in the events' order. */
export async function postAll(baseUrl: string, hmacKey: string, events: MemberEvent[], concurrency = 8): Promise<number[]> {
  const statuses: number[] = new Array<number>(events.length).fill(0)
  let next = 0
  const worker = async () => {
    while (next < events.length) {
      const index = next++
      statuses[index] = await postEvent(baseUrl, hmacKey, events[index] as MemberEvent)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker))
  return statuses
}
