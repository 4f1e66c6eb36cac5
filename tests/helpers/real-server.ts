/**
 * A real server process with one community connected to a Kit key, for the tests that stop or
 * kill the process mid-backlog and check what Kit ends up holding.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { StandinAccountState } from '../kit-standin/server.ts'
import { makeEvent, signedHeaders } from './events.ts'
import { freePort, startServer, type ServerProcess } from './server-process.ts'
import { signToken } from './tokens.ts'

export interface ConnectedServerOptions {
  kitUrl: string
  apiKey: string
  communityId: string
  /** Kit requests per second for the plugin's budget. */
  kitRatePerSecond: number
}

export interface ConnectedServer {
  server: ServerProcess
  env: Record<string, string>
  port: number
  databasePath: string
  /** Posts one signed event; answers the HTTP status. */
  post(event: Record<string, unknown>): Promise<number>
}

export async function startConnectedServer(o: ConnectedServerOptions): Promise<ConnectedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kit-real-'))
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const jwtSecret = randomBytes(32).toString('hex')
  const hmac = randomBytes(32).toString('base64')
  const databasePath = join(dir, 'kit.sqlite')
  const env = {
    DATABASE_PATH: databasePath,
    KIT_API_URL: o.kitUrl,
    APPSTATION_ISSUER: origin,
    APPSTATION_JWT_SECRET: jwtSecret,
    EVENTS_SECRET: `whsec_${hmac}`,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    KIT_RATE_LIMIT: String(o.kitRatePerSecond),
    KIT_RATE_WINDOW_MS: '1000',
  }
  const server = await startServer(env, port)
  const token = signToken({ secret: jwtSecret, claims: { iss: origin, cid: o.communityId } })
  const put = await fetch(`${origin}/api/v1/connection`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ api_key: o.apiKey }),
  })
  expect(put.status).toBe(200)
  const post = async (event: Record<string, unknown>) => {
    const body = JSON.stringify(event)
    return (await fetch(`${origin}/events`, { method: 'POST', body, headers: signedHeaders(body, { secret: hmac }) })).status
  }
  return { server, env, port, databasePath, post }
}

/** Each member signs up, then starts a subscription: two events a member, in time order. */
export function signUpAndSubscribe(communityId: string, members: number): Record<string, unknown>[] {
  const events = []
  const t0 = Date.now() - 60_000
  for (let i = 0; i < members; i++) {
    const m = { communityId, memberId: `m_${i}`, email: `${communityId}.${i}@example.com` }
    events.push(makeEvent({ ...m, type: 'user.signed_up', time: new Date(t0 + i * 10).toISOString() }))
    events.push(
      makeEvent({ ...m, type: 'subscription.started', subscription: { id: `s_${i}` }, time: new Date(t0 + i * 10 + 1).toISOString() }),
    )
  }
  return events
}

/** Every member is in Kit once, with exactly the two default tags, and no tag exists twice. */
export function expectEachMemberOnceWithBothTags(account: StandinAccountState, members: number): void {
  expect(account.subscribers).toHaveLength(members)
  const tagName = (id: number) => account.tags.find((t) => t.id === id)?.name
  for (const s of account.subscribers) expect([...s.tags].map(tagName).sort()).toEqual(['Active Member', 'New Member'])
  expect(new Set(account.tags.map((t) => t.name)).size).toBe(account.tags.length)
}
