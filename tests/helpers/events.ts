/** Member events signed like the platform signs them (Standard Webhooks over the raw body). */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Webhook } from 'standardwebhooks'

let counter = 0

export interface EventInput {
  type?: string
  communityId?: string
  memberId?: string
  email?: string
  firstName?: string
  fields?: Record<string, string | null>
  /** `data.member.consent` as the platform sends it. */
  consent?: { marketing: boolean; at?: string }
  subscription?: { id: string; plan?: string; status?: string }
  access?: { level: string }
  time?: string
  id?: string
}

export function makeEvent(input: EventInput = {}): Record<string, unknown> {
  counter += 1
  const communityId = input.communityId ?? 'c_alpha'
  const memberId = input.memberId ?? `m_${counter}`
  const type = input.type ?? 'user.signed_up'
  const data: Record<string, unknown> = {
    member: {
      id: memberId,
      email: input.email ?? `${memberId}@example.com`,
      ...(input.firstName ? { first_name: input.firstName } : {}),
      ...(input.fields ? { fields: input.fields } : {}),
      ...(input.consent ? { consent: input.consent } : {}),
    },
  }
  if (input.subscription || type.startsWith('subscription.')) {
    data.subscription = input.subscription ?? { id: `s_${memberId}`, plan: 'pro-annual', status: 'active' }
  }
  if (input.access || type.startsWith('access.')) data.access = input.access ?? { level: 'gold' }
  return {
    specversion: '1.0',
    id: input.id ?? `evt_${randomUUID().replace(/-/g, '')}`,
    source: `https://appstation.example/communities/${communityId}`,
    type,
    time: input.time ?? new Date(Date.now() + counter).toISOString(),
    communityid: communityId,
    subject: `members/${memberId}`,
    data,
  }
}

export interface SignOptions {
  secret: string
  id?: string
  timestamp?: number
  extraSignatures?: string[]
}

export function signedHeaders(body: string, { secret, id, timestamp, extraSignatures = [] }: SignOptions): Record<string, string> {
  const msgId = id ?? (JSON.parse(body) as { id: string }).id
  const ts = timestamp ?? Math.floor(Date.now() / 1000)
  const signature = new Webhook(secret).sign(msgId, new Date(ts * 1000), body)
  return {
    'content-type': 'application/cloudevents+json',
    'webhook-id': msgId,
    'webhook-timestamp': String(ts),
    'webhook-signature': [...extraSignatures, signature].join(' '),
  }
}

export function postEvent(app: FastifyInstance, secret: string, event: Record<string, unknown>, overrides: Partial<SignOptions> = {}) {
  const body = JSON.stringify(event)
  return app.inject({ method: 'POST', url: '/events', payload: body, headers: signedHeaders(body, { secret, ...overrides }) })
}

export async function waitFor<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 10_000, what = 'condition' } = {},
): Promise<T> {
  const start = Date.now()
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
