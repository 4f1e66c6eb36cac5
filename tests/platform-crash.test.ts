/**
 * The outbox of events to the platform under kill -9: a server killed while its POSTs are under
 * way sends the very same events (same id, same body) again after its restart, and loses none.
 */
import Database from 'better-sqlite3'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { PlatformEvents } from '../server/pipeline/platform-events.ts'
import { createSqliteStorage } from '../server/storage/sqlite/index.ts'
import { goodSecrets } from './helpers/config.ts'
import { waitFor } from './helpers/events.ts'
import { startPlatformReceiver, type PlatformReceiver } from './helpers/platform-receiver.ts'
import { freePort, startServer, type ServerProcess } from './helpers/server-process.ts'

let receiver: PlatformReceiver | undefined
let server: ServerProcess | undefined

afterAll(async () => {
  await server?.kill('SIGKILL')
  await receiver?.close()
})

describe('platform events under kill -9', () => {
  it('sends the events that were in flight again under the same id after a restart, and loses none', async () => {
    receiver = await startPlatformReceiver()
    const path = join(mkdtempSync(join(tmpdir(), 'kit-platform-crash-')), 'kit.sqlite')
    const { storage } = createSqliteStorage(path)
    const port = new PlatformEvents({ outbox: storage.platformOutbox, configured: true, notify: () => {} })
    const order = new Map<string, string[]>()
    for (let round = 0; round < 3; round += 1) {
      for (const m of ['m_1', 'm_2']) {
        const stored = await port.emit({
          type: 'kit.subscriber.updated',
          communityId: 'c_crash',
          member: { id: m, email: `${m}@example.com` },
          kit: { subscriber_id: 1, state: 'active', email_address: `${m}@example.com`, first_name: `Name ${round}` },
          changes: { first_name: { from: `Name ${round - 1}`, to: `Name ${round}` } },
          observedAt: Date.now(),
        })
        order.set(m, [...(order.get(m) ?? []), (stored as { id: string }).id])
      }
    }
    await storage.close()

    // The platform takes the requests and never answers: the server is killed mid-send.
    receiver.answer = () => 'hang'
    const env = { DATABASE_PATH: path, ...goodSecrets(), PLATFORM_EVENTS_URL: receiver.url, PLATFORM_EVENTS_SECRET: receiver.secret }
    const port1 = await freePort()
    server = await startServer(env, port1)
    await waitFor(() => receiver!.received.length >= 2, { timeoutMs: 20_000, what: 'the first event of each member in flight' })
    const inFlight = receiver.received.map((r) => r.id)
    expect(inFlight.sort()).toEqual([order.get('m_1')![0], order.get('m_2')![0]].sort())
    await server.kill('SIGKILL')

    receiver.answer = () => 204
    const before = receiver.received.length
    server = await startServer(env, port1)
    await waitFor(() => receiver!.accepted().length === 6, { timeoutMs: 20_000, what: 'every event after the restart' })

    const after = receiver.received.slice(before)
    for (const id of inFlight) {
      const resent = after.filter((r) => r.id === id)
      expect(resent, id).toHaveLength(1)
      expect(resent[0]!.raw).toBe(receiver.received.find((r) => r.id === id)!.raw)
    }
    expect(receiver.received.every((r) => r.verified)).toBe(true)
    for (const [m, ids] of order)
      expect(
        after.filter((r) => r.body.subject === `members/${m}`).map((r) => r.id),
        m,
      ).toEqual(ids)

    const db = new Database(path, { readonly: true })
    try {
      await waitFor(() => (db.prepare(`SELECT count(*) AS n FROM platform_events WHERE state = 'sent'`).get() as { n: number }).n === 6, {
        what: 'every event recorded as sent',
      })
    } finally {
      db.close()
    }
    expect(await server.kill('SIGTERM')).toBe(0)
    server = undefined
  }, 90_000)
})
