import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'
import { makeEvent, signedHeaders, waitFor } from './helpers/events.ts'
import { freePort, startServer, type ServerProcess } from './helpers/server-process.ts'
import { signToken } from './helpers/tokens.ts'

const KEY = 'kit_crash_key_0001'
const MEMBERS = 40

let kit: KitStandin
let server: ServerProcess | undefined

beforeAll(async () => {
  kit = await startKitStandin({ apiKeys: [KEY], rateLimit: { limit: 40, windowMs: 1000 } })
})
afterAll(async () => {
  await server?.kill('SIGKILL')
  await kit.close()
})

describe('crash safety', () => {
  it('a SIGKILL mid-backlog loses nothing and applies nothing twice in effect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-crash-'))
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const jwtSecret = randomBytes(32).toString('hex')
    const hmac = randomBytes(32).toString('base64')
    const env = {
      DATABASE_PATH: join(dir, 'kit.sqlite'),
      KIT_API_URL: kit.url,
      APPSTATION_ISSUER: origin,
      APPSTATION_JWT_SECRET: jwtSecret,
      EVENTS_SECRET: `whsec_${hmac}`,
      ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      KIT_RATE_LIMIT: '40',
      KIT_RATE_WINDOW_MS: '1000',
    }
    server = await startServer(env, port)
    const token = signToken({ secret: jwtSecret, claims: { iss: origin, cid: 'c_crash' } })
    const put = await fetch(`${origin}/api/v1/connection`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ api_key: KEY }),
    })
    expect(put.status).toBe(200)

    const events = []
    const t0 = Date.now() - 60_000
    for (let i = 0; i < MEMBERS; i++) {
      const m = { communityId: 'c_crash', memberId: `m_${i}`, email: `crash${i}@example.com` }
      events.push(makeEvent({ ...m, type: 'user.signed_up', time: new Date(t0 + i * 10).toISOString() }))
      events.push(makeEvent({ ...m, type: 'subscription.started', subscription: { id: `s_${i}` }, time: new Date(t0 + i * 10 + 1).toISOString() }))
    }
    const post = async (event: Record<string, unknown>) => {
      const body = JSON.stringify(event)
      return fetch(`${origin}/events`, { method: 'POST', body, headers: signedHeaders(body, { secret: hmac }) })
    }
    for (const event of events) expect((await post(event)).status).toBe(202)

    const db = new Database(env.DATABASE_PATH, { readonly: true })
    const done = () => (db.prepare(`SELECT count(*) AS n FROM deliveries WHERE status = 'succeeded'`).get() as { n: number }).n
    await waitFor(() => done() >= 10, { timeoutMs: 20_000, what: 'some deliveries' })
    expect(done()).toBeLessThan(events.length)
    await server.kill('SIGKILL')

    server = await startServer(env, port)
    for (const event of events.slice(0, 10)) expect((await post(event)).status).toBe(200)
    await waitFor(() => done() === events.length, { timeoutMs: 30_000, what: 'every delivery after restart' })
    db.close()

    const account = kit.account(KEY)
    expect(account.subscribers).toHaveLength(MEMBERS)
    const tagName = (id: number) => account.tags.find((t) => t.id === id)?.name
    for (const s of account.subscribers) expect([...s.tags].map(tagName).sort()).toEqual(['Active Member', 'New Member'])
    expect(new Set(account.tags.map((t) => t.name)).size).toBe(account.tags.length)
  }, 90_000)

  it('SIGTERM finishes or gives back work in flight and exits cleanly', async () => {
    expect(server).toBeDefined()
    const code = await server!.kill('SIGTERM')
    expect(code).toBe(0)
    server = undefined
  })
})
