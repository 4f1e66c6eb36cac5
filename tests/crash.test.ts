import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'
import { waitFor } from './helpers/events.ts'
import { expectEachMemberOnceWithBothTags, signUpAndSubscribe, startConnectedServer } from './helpers/real-server.ts'
import { startServer, type ServerProcess } from './helpers/server-process.ts'

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
    const started = await startConnectedServer({ kitUrl: kit.url, apiKey: KEY, communityId: 'c_crash', kitRatePerSecond: 40 })
    const { env, port, post } = started
    server = started.server
    const events = signUpAndSubscribe('c_crash', MEMBERS)
    for (const event of events) expect(await post(event)).toBe(202)

    const db = new Database(env.DATABASE_PATH, { readonly: true })
    const done = () => (db.prepare(`SELECT count(*) AS n FROM deliveries WHERE status = 'succeeded'`).get() as { n: number }).n
    await waitFor(() => done() >= 10, { timeoutMs: 20_000, what: 'some deliveries' })
    expect(done()).toBeLessThan(events.length)
    await server.kill('SIGKILL')

    server = await startServer(env, port)
    for (const event of events.slice(0, 10)) expect(await post(event)).toBe(200)
    await waitFor(() => done() === events.length, { timeoutMs: 30_000, what: 'every delivery after restart' })
    db.close()

    expectEachMemberOnceWithBothTags(kit.account(KEY), MEMBERS)
  }, 90_000)

  it('SIGTERM finishes or gives back work in flight and exits cleanly', async () => {
    expect(server).toBeDefined()
    const code = await server!.kill('SIGTERM')
    expect(code).toBe(0)
    server = undefined
  })
})
