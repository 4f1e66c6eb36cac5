import Database from 'better-sqlite3'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'
import { buildTestApp } from './helpers/app.ts'
import { makeEvent, postEvent, waitFor } from './helpers/events.ts'
import { startPausableProxy, type PausableProxy } from './helpers/pausable-proxy.ts'
import { expectEachMemberOnceWithBothTags, signUpAndSubscribe, startConnectedServer } from './helpers/real-server.ts'
import { startServer, type ServerProcess } from './helpers/server-process.ts'
import { auth, tokenFor } from './helpers/tokens.ts'

const KEY = 'kit_shutdown_key_0001'
const MEMBERS = 12
/** The consumer's grace for work in flight when the process is asked to stop. */
const GRACE_MS = 10_000

let kit: KitStandin
let proxy: PausableProxy
let server: ServerProcess | undefined

beforeAll(async () => {
  kit = await startKitStandin({ apiKeys: [KEY], rateLimit: { limit: 100, windowMs: 1000 } })
  proxy = await startPausableProxy(kit.url)
})
afterAll(async () => {
  await server?.kill('SIGKILL')
  proxy.resume()
  await proxy.close()
  await kit.close()
})

interface Row {
  id: string
  status: string
  attempts: number
  lease_owner: string | null
}

describe('shutdown with deliveries in flight', () => {
  it('SIGTERM while Kit is slow exits 0 within the grace period, gives the work back, and a restart delivers it once in effect', async () => {
    const connected = await startConnectedServer({ kitUrl: proxy.url, apiKey: KEY, communityId: 'c_shutdown', kitRatePerSecond: 100 })
    const { env, port, post } = connected
    server = connected.server

    // Kit turns slow: every call now waits at the proxy, so claimed deliveries stay in flight.
    proxy.pause()
    const events = signUpAndSubscribe('c_shutdown', MEMBERS)
    for (const event of events) expect(await post(event)).toBe(202)

    const db = new Database(env.DATABASE_PATH, { readonly: true })
    const rows = () => db.prepare('SELECT id, status, attempts, lease_owner FROM deliveries ORDER BY seq').all() as Row[]
    await waitFor(() => proxy.held() >= 2, { timeoutMs: 10_000, what: 'Kit calls held at the proxy' })
    const inFlight = rows().filter((r) => r.lease_owner !== null)
    expect(inFlight.length).toBeGreaterThanOrEqual(2)

    const started = Date.now()
    const stopping = server
    const code = await stopping.kill('SIGTERM')
    const elapsed = Date.now() - started
    server = undefined
    expect(code, stopping.output()).toBe(0)
    expect(elapsed).toBeLessThan(GRACE_MS + 5_000)
    // Stopping work on purpose is not an error: nothing at error level (50) or above was logged.
    expect(stopping.output()).not.toMatch(/"level":(50|60)/)

    const after = rows()
    expect(after.filter((r) => r.lease_owner !== null)).toEqual([])
    for (const r of inFlight) {
      const now = after.find((a) => a.id === r.id)
      expect(now).toMatchObject({ status: 'pending', attempts: r.attempts, lease_owner: null })
    }
    expect(after.every((r) => r.status === 'pending')).toBe(true)

    // Kit answers again (the calls it held are applied late, as a slow Kit would), and the
    // restarted server delivers everything.
    proxy.resume()
    server = await startServer(env, port)
    const succeeded = () => rows().filter((r) => r.status === 'succeeded').length
    await waitFor(() => succeeded() === events.length, { timeoutMs: 30_000, what: 'every delivery after restart' })
    db.close()

    expectEachMemberOnceWithBothTags(kit.account(KEY), MEMBERS)
  }, 90_000)
})

describe('an attempt stopped by shutdown', () => {
  it('goes back to the queue untouched, even for a delivery whose retries have run out', async () => {
    const secret = randomBytes(32).toString('base64')
    // Retries run out at once: any failure of this delivery would be final.
    const { app } = await buildTestApp(
      { kitApiUrl: proxy.url, eventsSecrets: [secret] },
      { retry: { baseMs: 30, maxMs: 100, rateLimitWaitMs: 300, giveUpAfterMs: 0 } },
    )
    try {
      const connected = await app.inject({
        method: 'PUT',
        url: '/api/v1/connection',
        headers: auth(tokenFor('c_stop')),
        payload: { api_key: KEY },
      })
      expect(connected.statusCode).toBe(200)
      proxy.pause()
      const event = makeEvent({ communityId: 'c_stop', memberId: 'm_stop', email: 'stop@example.com' })
      expect((await postEvent(app, secret, event)).statusCode).toBe(202)
      await waitFor(() => proxy.held() >= 1, { timeoutMs: 10_000, what: 'a Kit call held at the proxy' })
      await app.pipeline.consumer.stop(0)
      const row = app.sqlite.prepare('SELECT status, attempts, lease_owner, last_error FROM deliveries WHERE event_id = ?').get(event.id)
      expect(row).toEqual({ status: 'pending', attempts: 0, lease_owner: null, last_error: null })
    } finally {
      proxy.resume()
      await app.close()
    }
  })
})
