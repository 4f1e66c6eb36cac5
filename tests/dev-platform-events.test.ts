/**
 * The local App Station's receiver of platform events: it takes only events signed with
 * PLATFORM_EVENTS_SECRET, lists them (each id once, with how often it came), keeps the last 200,
 * exists only with KIT_DEV_HOST=1, and receives what the app's own sender tells it.
 */
import { createServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { Webhook } from 'standardwebhooks'
import { afterEach, describe, expect, it } from 'vitest'
import { RECEIVED_KEPT } from '../server/routes/dev-platform-events.ts'
import type { ReceivedPlatformEvents } from '#shared/dev-platform-events.ts'
import { buildTestApp } from './helpers/app.ts'
import { waitFor } from './helpers/events.ts'
import { newPlatformSecret } from './helpers/platform-receiver.ts'

const PORT = 8787
const HOST = { host: `127.0.0.1:${PORT}` }

let app: FastifyInstance | undefined
afterEach(async () => {
  await app?.close()
  app = undefined
})

function anEvent(id: string, type = 'kit.subscriber.unsubscribed') {
  return {
    specversion: '1.0',
    id,
    source: 'kit-for-appstation',
    type,
    time: new Date().toISOString(),
    communityid: 'c_1',
    subject: 'members/m_1',
    data: {},
  }
}

function deliver(target: FastifyInstance, secret: string, event: Record<string, unknown>, body = JSON.stringify(event)) {
  const id = String(event.id)
  const at = new Date()
  return target.inject({
    method: 'POST',
    url: '/dev/platform-events',
    payload: body,
    headers: {
      ...HOST,
      'content-type': 'application/cloudevents+json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(id, at, JSON.stringify(event)),
    },
  })
}

const listed = async (target: FastifyInstance) =>
  (await target.inject({ method: 'GET', url: '/dev/api/platform-events', headers: HOST })).json<ReceivedPlatformEvents>()

async function devApp(secret: string | null): Promise<FastifyInstance> {
  const platformEvents = secret ? { url: `http://127.0.0.1:${PORT}/dev/platform-events`, secret } : null
  app = (await buildTestApp({ devHost: true, port: PORT, platformEvents }, {}, {})).app
  return app
}

describe('the local App Station’s receiver of platform events', () => {
  it('takes a signed event and lists it once per id, counting a repeat', async () => {
    const secret = newPlatformSecret()
    const target = await devApp(secret)
    expect((await deliver(target, secret, anEvent('kitevt_1'))).statusCode).toBe(204)
    expect((await deliver(target, secret, anEvent('kitevt_2', 'kit.subscriber.bounced'))).statusCode).toBe(204)
    expect((await deliver(target, secret, anEvent('kitevt_1'))).statusCode).toBe(204)
    const list = await listed(target)
    expect(list.configured).toBe(true)
    expect(list.items.map((e) => [e.id, e.type, e.deliveries])).toEqual([
      ['kitevt_1', 'kit.subscriber.unsubscribed', 2],
      ['kitevt_2', 'kit.subscriber.bounced', 1],
    ])
    expect(list.items[0]).toMatchObject({ communityid: 'c_1', subject: 'members/m_1', event: { id: 'kitevt_1' } })
  })

  it('refuses an event signed with another secret, a changed body or no signature, and keeps none', async () => {
    const secret = newPlatformSecret()
    const target = await devApp(secret)
    const other = await deliver(target, newPlatformSecret(), anEvent('kitevt_a'))
    expect(other.statusCode).toBe(401)
    expect(other.json().error.code).toBe('invalid_signature')
    const event = anEvent('kitevt_b')
    const changed = await deliver(target, secret, event, JSON.stringify({ ...event, type: 'kit.subscriber.updated' }))
    expect(changed.statusCode).toBe(401)
    const unsigned = await target.inject({
      method: 'POST',
      url: '/dev/platform-events',
      payload: JSON.stringify(anEvent('kitevt_c')),
      headers: { ...HOST, 'content-type': 'application/cloudevents+json' },
    })
    expect(unsigned.statusCode).toBe(401)
    expect((await listed(target)).items).toEqual([])
  })

  it('keeps only the last 200', async () => {
    const secret = newPlatformSecret()
    const target = await devApp(secret)
    for (let i = 0; i <= RECEIVED_KEPT; i += 1) expect((await deliver(target, secret, anEvent(`kitevt_${i}`))).statusCode).toBe(204)
    const items = (await listed(target)).items
    expect(items).toHaveLength(RECEIVED_KEPT)
    expect(items[0]!.id).toBe(`kitevt_${RECEIVED_KEPT}`)
    expect(items.some((e) => e.id === 'kitevt_0')).toBe(false)
  })

  it('says events to the platform are not configured when there is no secret to check with', async () => {
    const target = await devApp(null)
    const res = await deliver(target, newPlatformSecret(), anEvent('kitevt_1'))
    expect(res.statusCode).toBe(409)
    expect(res.json().error.code).toBe('platform_events_not_configured')
    expect(await listed(target)).toEqual({ configured: false, url: null, items: [] })
  })

  it('does not exist without KIT_DEV_HOST=1', async () => {
    const secret = newPlatformSecret()
    app = (await buildTestApp({ devHost: false, platformEvents: { url: 'http://127.0.0.1:9/dev/platform-events', secret } })).app
    expect((await deliver(app, secret, anEvent('kitevt_1'))).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/dev/api/platform-events' })).statusCode).toBe(404)
  })

  it('receives, signed and once, what the app tells the platform', async () => {
    const port = await freePort()
    const secret = newPlatformSecret()
    app = (await buildTestApp({ devHost: true, port, platformEvents: { url: `http://127.0.0.1:${port}/dev/platform-events`, secret } })).app
    await app.listen({ port, host: '127.0.0.1' })
    const stored = await app.platformEvents.port.emit({
      type: 'kit.subscriber.unsubscribed',
      communityId: 'c_demo',
      member: { id: 'm_ada', email: 'ada@example.com' },
      kit: { subscriber_id: 7, state: 'cancelled', email_address: 'ada@example.com', first_name: 'Ada' },
      observedAt: Date.now(),
    })
    const id = (stored as { id: string }).id
    const live = app
    const items = await waitFor(
      async () => {
        const list = (await live.inject({ method: 'GET', url: '/dev/api/platform-events', headers: { host: `127.0.0.1:${port}` } })).json()
        return list.items.length > 0 && list.items
      },
      { what: 'the event at the dev receiver' },
    )
    expect(items).toEqual([
      expect.objectContaining({ id, type: 'kit.subscriber.unsubscribed', communityid: 'c_demo', subject: 'members/m_ada', deliveries: 1 }),
    ])
    await waitFor(async () => (await live.storage.platformOutbox.list('c_demo', { state: 'sent', limit: 10 })).length === 1, {
      what: 'the event recorded as sent',
    })
  })
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
