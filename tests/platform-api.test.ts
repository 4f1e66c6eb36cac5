/**
 * The settings API's view of the events told to App Station, through the real app: whether they
 * are configured, a community's events page by page, the 30-day summary, Retry of a failed one;
 * another community can neither read nor retry them. And a connection Kit stops accepting is told
 * to the platform once.
 */
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/events.ts'
import { buildTestApp } from './helpers/app.ts'
import { receiverForTests } from './helpers/platform-receiver.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { sessionFor } from './helpers/tokens.ts'

let app: FastifyInstance | undefined
let logs: string[] = []
const receiver = receiverForTests(async () => {
  await app?.close()
  app = undefined
})

async function configuredApp(): Promise<FastifyInstance> {
  const built = await buildTestApp({ platformEvents: { url: receiver.url, secret: receiver.secret } })
  logs = built.logs
  app = built.app
  return app
}

const unsubscribe = (communityId: string, memberId: string) => ({
  type: 'kit.subscriber.unsubscribed' as const,
  communityId,
  member: { id: memberId, email: `${memberId}@example.com` },
  kit: { subscriber_id: 7, state: 'cancelled', email_address: `${memberId}@example.com`, first_name: null },
  observedAt: Date.now(),
})

describe('the platform events API', () => {
  it('says when events to App Station are not configured, and stores none', async () => {
    app = (await buildTestApp()).app
    expect(app.platformEvents.sender).toBeNull()
    expect(await app.platformEvents.port.emit(unsubscribe('c_1', 'm_1'))).toEqual({ status: 'not_configured' })
    const res = await app.inject({ method: 'GET', url: '/api/v1/platform-events/summary', headers: sessionFor('c_1') })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ configured: false, since: expect.any(String), counts: [] })
    expect(Date.now() - Date.parse(res.json().since)).toBeGreaterThanOrEqual(30 * 24 * 60 * 60_000)
  })

  it('lists a community’s events newest first, page by page, as sent by the sender started with the app', async () => {
    const built = await configuredApp()
    const ids: string[] = []
    for (let i = 0; i < 3; i += 1) ids.push(((await built.platformEvents.port.emit(unsubscribe('c_1', `m_${i}`))) as { id: string }).id)
    await built.platformEvents.port.emit(unsubscribe('c_2', 'm_x'))
    await waitFor(() => receiver.accepted().length === 4, { what: 'the four events at the receiver' })
    await waitFor(async () => (await built.storage.platformOutbox.list('c_1', { state: 'sent', limit: 10 })).length === 3, {
      what: 'sent recorded',
    })

    const first = await built.inject({ method: 'GET', url: '/api/v1/platform-events?limit=2', headers: sessionFor('c_1') })
    expect(first.statusCode).toBe(200)
    expect(first.json().items.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]])
    expect(first.json().items[0]).toMatchObject({
      type: 'kit.subscriber.unsubscribed',
      state: 'sent',
      attempts: 1,
      last_error: null,
      member: { id: 'm_2', email: 'm_2@example.com' },
      data: { kit: { state: 'cancelled' } },
      next_attempt_at: null,
    })
    const second = await built.inject({
      method: 'GET',
      url: `/api/v1/platform-events?limit=2&cursor=${first.json().next_cursor}`,
      headers: sessionFor('c_1'),
    })
    expect(second.json()).toMatchObject({ items: [{ id: ids[0] }], next_cursor: null })

    const summary = await built.inject({ method: 'GET', url: '/api/v1/platform-events/summary', headers: sessionFor('c_1') })
    expect(summary.json()).toMatchObject({ configured: true, counts: [{ type: 'kit.subscriber.unsubscribed', state: 'sent', count: 3 }] })
    const other = await built.inject({ method: 'GET', url: '/api/v1/platform-events', headers: sessionFor('c_2') })
    expect(other.json().items.map((e: { member: { id: string } }) => e.member.id)).toEqual(['m_x'])

    // The log says what was sent, never the secret, a signature or whom it was about.
    const sent = await waitFor(
      () => {
        const lines = logs.filter((line) => line.includes('platform event sent'))
        return lines.length === 4 && lines
      },
      { what: 'a log line per event sent' },
    )
    expect(ids.every((id) => sent.some((line) => line.includes(id)))).toBe(true)
    const secretKey = receiver.secret.slice('whsec_'.length)
    for (const line of logs) {
      expect(line).not.toContain(secretKey)
      expect(line).not.toContain('v1,')
      expect(line).not.toContain('@example.com')
    }
  })

  it('retries a failed event under its own id; another community can neither see nor retry it', async () => {
    const built = await configuredApp()
    await built.platformEvents.sender!.stop()
    const { id } = (await built.platformEvents.port.emit(unsubscribe('c_1', 'm_1'))) as { id: string }
    const outbox = built.storage.platformOutbox
    const [row] = await outbox.claim('test', Date.now(), 60_000, 1)
    await outbox.settle(row!.seq, 'test', { state: 'failed', lastError: 'http_410' }, Date.now())

    const failed = await built.inject({ method: 'GET', url: '/api/v1/platform-events?status=failed', headers: sessionFor('c_1') })
    expect(failed.json().items).toMatchObject([{ id, state: 'failed', last_error: 'http_410', attempts: 1 }])
    const stranger = await built.inject({ method: 'POST', url: `/api/v1/platform-events/${id}/retry`, headers: sessionFor('c_2') })
    expect(stranger.statusCode).toBe(404)
    expect(stranger.json().error.code).toBe('not_found')
    const strangerList = await built.inject({ method: 'GET', url: '/api/v1/platform-events', headers: sessionFor('c_2') })
    expect(strangerList.json().items).toEqual([])

    const retried = await built.inject({ method: 'POST', url: `/api/v1/platform-events/${id}/retry`, headers: sessionFor('c_1') })
    expect(retried.statusCode).toBe(202)
    expect(retried.json()).toMatchObject({ id, state: 'pending', next_attempt_at: expect.any(String) })
    const again = await built.inject({ method: 'POST', url: `/api/v1/platform-events/${id}/retry`, headers: sessionFor('c_1') })
    expect(again.statusCode).toBe(409)
    expect(again.json().error.code).toBe('not_retryable')
    const [claimed] = await outbox.claim('test', Date.now(), 60_000, 1)
    expect(claimed?.id).toBe(id)
  })

  it('tells the platform once when Kit stops accepting a community’s key', async () => {
    const built = await configuredApp()
    const now = new Date().toISOString()
    await built.storage.connections.save({
      communityId: 'c_1',
      apiKeyCiphertext: 'sealed',
      keyHint: '…abcd',
      status: 'connected',
      accountJson: null,
      credentialId: 'cred_1',
      createdAt: now,
      updatedAt: now,
      kind: 'api_key',
      refreshTokenCiphertext: null,
      tokenExpiresAt: null,
      tokenRefreshAt: null,
      refreshLeaseUntil: null,
    })
    await built.services.connections.markInvalid('c_1', 'cred_1')
    await built.services.connections.markInvalid('c_1', 'cred_1')
    await waitFor(() => receiver.accepted().length === 1, { what: 'the connection event' })
    const [event] = receiver.accepted()
    expect(event!.body).toMatchObject({ type: 'kit.connection.invalid', communityid: 'c_1', data: { observed_at: expect.any(String) } })
    expect(event!.body.subject).toBeUndefined()
    expect(await built.storage.platformOutbox.list('c_1', { limit: 10 })).toHaveLength(1)
  })
})

describe('a key Kit stops accepting', () => {
  it('is told to the platform once, signed, without a member, however often Kit refuses it', async () => {
    const h = await PipelineHarness.start({ connected: true, config: { platformEvents: { url: receiver.url, secret: receiver.secret } } })
    try {
      h.kit.revokeKey(KEY)
      for (let i = 0; i < 2; i += 1) {
        const res = await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })
        expect(res.json().ok).toBe(false)
      }
      await waitFor(() => receiver.accepted().length === 1, { what: 'the connection event' })
      const [event] = receiver.accepted()
      expect(event!.verified).toBe(true)
      expect(event!.body).toMatchObject({ type: 'kit.connection.invalid', communityid: 'c_alpha', source: 'kit-for-appstation' })
      expect(event!.body.subject).toBeUndefined()
      expect(await h.app.storage.platformOutbox.list('c_alpha', { limit: 10 })).toHaveLength(1)
    } finally {
      await h.close()
    }
  })
})

describe('deliveries failing for good', () => {
  it('are told to the platform with their count and reason code, and a second failure within the hour waits', async () => {
    const h = await PipelineHarness.start({
      kit: { listLagMs: 0 },
      config: { platformEvents: { url: receiver.url, secret: receiver.secret } },
    })
    try {
      h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }] })
      await h.connect()
      const form = h.kit.account(KEY).forms.find((f) => f.name === 'Newsletter')!
      await h.putMappings((doc) => {
        doc.events['user.signed_up'].add_to_forms = [{ id: form.id, name: form.name }]
      })
      h.kit.archiveForm(KEY, form.id)
      const first = await h.send({ type: 'user.signed_up', memberId: 'm_ada', email: 'ada@example.com' })
      expect(await h.settled(first)).toMatchObject({ status: 'failed', reason: 'mapping_refused' })
      await waitFor(() => receiver.accepted().length === 1, { what: 'the failing notice' })
      const [notice] = receiver.accepted()
      expect(notice!.verified).toBe(true)
      expect(notice!.body).toMatchObject({
        type: 'kit.deliveries.failing',
        communityid: 'c_alpha',
        data: { failed: 1, reasons: ['mapping_refused'] },
      })

      const second = await h.send({ type: 'user.signed_up', memberId: 'm_bo', email: 'bo@example.com' })
      expect(await h.settled(second)).toMatchObject({ status: 'failed', reason: 'mapping_refused' })
      const stored = await h.app.storage.platformOutbox.list('c_alpha', { limit: 10 })
      expect(
        stored.map((e) => e.type),
        'one notice an hour',
      ).toEqual(['kit.deliveries.failing'])
    } finally {
      await h.close()
    }
  })
})
