import Database from 'better-sqlite3'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'
import { waitFor } from './helpers/events.ts'
import { startConnectedServer, type ConnectedServer } from './helpers/real-server.ts'
import { startServer, type ServerProcess } from './helpers/server-process.ts'
import { sessionFor } from './helpers/tokens.ts'

const KEY = 'kit_sync_crash_key_0001'
const KEY_2 = 'kit_sync_crash_key_0002'
const MEMBERS = 300

let kit: KitStandin
const servers: ServerProcess[] = []

beforeAll(async () => {
  kit = await startKitStandin({ apiKeys: [KEY, KEY_2], rateLimit: { limit: 40, windowMs: 1000 } })
})
afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) await s.kill('SIGKILL')
  await kit.close()
})

/** A session on that server; each request signs a fresh token. */
const sessionOn = (started: ConnectedServer, communityId: string) =>
  sessionFor(communityId, { secret: started.env.APPSTATION_JWT_SECRET as string, claims: { iss: `http://127.0.0.1:${started.port}` } })

const memberFile = (from: number, to: number) => {
  const lines = []
  for (let i = from; i < to; i++) lines.push(`member${i}@example.com,m_${i},Name ${i},gold`)
  return lines
}
const HEADER = 'email,member_id,first_name,access_level'

describe('a sync and a crash', () => {
  it('a SIGKILL in the middle of a sync loses no member and applies none twice; it resumes where it was', async () => {
    const started = await startConnectedServer({ kitUrl: kit.url, apiKey: KEY, communityId: 'c_sync', kitRatePerSecond: 40 })
    servers.push(started.server)
    const headers = sessionOn(started, 'c_sync')
    const res = await fetch(`http://127.0.0.1:${started.port}/api/v1/syncs`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'text/csv' },
      body: [HEADER, ...memberFile(0, MEMBERS)].join('\n'),
    })
    expect(res.status).toBe(202)
    const syncId = ((await res.json()) as { id: string }).id

    const db = new Database(started.databasePath, { readonly: true })
    const done = () =>
      (db.prepare(`SELECT count(*) AS n FROM deliveries WHERE sync_id = ? AND status = 'succeeded'`).get(syncId) as { n: number }).n
    await waitFor(() => done() >= 40, { timeoutMs: 30_000, what: 'part of the sync' })
    expect(done()).toBeLessThan(MEMBERS)
    await started.server.kill('SIGKILL')

    const restarted = await startServer(started.env, started.port)
    servers.push(restarted)
    await waitFor(() => done() === MEMBERS, { timeoutMs: 60_000, what: 'the whole sync after the restart' })
    db.close()

    const sync = (await (await fetch(`${restarted.url}/api/v1/syncs/${syncId}`, { headers })).json()) as Record<string, unknown>
    expect(sync).toMatchObject({ status: 'completed', total: MEMBERS, done: MEMBERS, failed: 0, skipped: 0, remaining: 0 })
    const account = kit.account(KEY)
    expect(account.subscribers).toHaveLength(MEMBERS)
    expect(new Set(account.subscribers.map((s) => s.email_address)).size).toBe(MEMBERS)
    const gold = account.tags.filter((t) => t.name === 'Access: gold')
    expect(gold).toHaveLength(1)
    for (const s of account.subscribers) {
      const i = Number(/^member(\d+)@/.exec(s.email_address)?.[1])
      expect(s.first_name).toBe(`Name ${i}`)
      expect(s.fields).toEqual({ access_level: 'gold' })
      expect([...s.tags]).toEqual([gold[0]!.id])
    }
    await restarted.kill('SIGTERM')
  }, 120_000)

  it('a SIGKILL while the member file is still arriving leaves nothing of it after the restart', async () => {
    const started = await startConnectedServer({ kitUrl: kit.url, apiKey: KEY_2, communityId: 'c_upload', kitRatePerSecond: 40 })
    servers.push(started.server)
    const upload = request(`http://127.0.0.1:${started.port}/api/v1/syncs`, {
      method: 'POST',
      headers: { ...sessionOn(started, 'c_upload'), 'content-type': 'text/csv', 'transfer-encoding': 'chunked' },
    })
    upload.on('error', () => undefined)
    upload.write(`${[HEADER, ...memberFile(0, 2000)].join('\n')}\n`)

    const db = new Database(started.databasePath, { readonly: true })
    const staged = () => (db.prepare(`SELECT count(*) AS n FROM deliveries WHERE sync_id IS NOT NULL`).get() as { n: number }).n
    await waitFor(() => staged() >= 1000, { timeoutMs: 20_000, what: 'the first members of the file to be stored' })
    expect((db.prepare(`SELECT status FROM syncs`).get() as { status: string }).status).toBe('importing')
    await started.server.kill('SIGKILL')
    upload.destroy()

    const restarted = await startServer(started.env, started.port)
    servers.push(restarted)
    expect(staged()).toBe(0)
    expect((db.prepare('SELECT count(*) AS n FROM syncs').get() as { n: number }).n).toBe(0)
    expect((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBe(0)
    db.close()
    expect(kit.account(KEY_2).subscribers).toHaveLength(0)
    await restarted.kill('SIGTERM')
  }, 60_000)
})
