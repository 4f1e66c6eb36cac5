import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'
import { makeEvent, signedHeaders, waitFor } from './helpers/events.ts'
import { startPausableProxy, type PausableProxy } from './helpers/pausable-proxy.ts'
import { freePort, startServer, type ServerProcess } from './helpers/server-process.ts'
import { signToken } from './helpers/tokens.ts'

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
    const dir = mkdtempSync(join(tmpdir(), 'kit-shutdown-'))
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const jwtSecret = randomBytes(32).toString('hex')
    const hmac = randomBytes(32).toString('base64')
    const env = {
      DATABASE_PATH: join(dir, 'kit.sqlite'),
      KIT_API_URL: proxy.url,
      APPSTATION_ISSUER: origin,
      APPSTATION_JWT_SECRET: jwtSecret,
      EVENTS_SECRET: `whsec_${hmac}`,
      ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      KIT_RATE_LIMIT: '100',
      KIT_RATE_WINDOW_MS: '1000',
    }
    server = await startServer(env, port)
    const token = signToken({ secret: jwtSecret, claims: { iss: origin, cid: 'c_shutdown' } })
    const put = await fetch(`${origin}/api/v1/connection`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ api_key: KEY }),
    })
    expect(put.status).toBe(200)

    // Kit turns slow: every call now waits at the proxy, so claimed deliveries stay in flight.
    proxy.pause()
    const events = []
    const t0 = Date.now() - 60_000
    for (let i = 0; i < MEMBERS; i++) {
      const m = { communityId: 'c_shutdown', memberId: `m_${i}`, email: `shutdown${i}@example.com` }
      events.push(makeEvent({ ...m, type: 'user.signed_up', time: new Date(t0 + i * 10).toISOString() }))
      events.push(makeEvent({ ...m, type: 'subscription.started', subscription: { id: `s_${i}` }, time: new Date(t0 + i * 10 + 1).toISOString() }))
    }
    for (const event of events) {
      const body = JSON.stringify(event)
      const res = await fetch(`${origin}/events`, { method: 'POST', body, headers: signedHeaders(body, { secret: hmac }) })
      expect(res.status).toBe(202)
    }

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

    const account = kit.account(KEY)
    expect(account.subscribers).toHaveLength(MEMBERS)
    const tagName = (id: number) => account.tags.find((t) => t.id === id)?.name
    for (const s of account.subscribers) expect([...s.tags].map(tagName).sort()).toEqual(['Active Member', 'New Member'])
    expect(new Set(account.tags.map((t) => t.name)).size).toBe(account.tags.length)
  }, 90_000)
})
