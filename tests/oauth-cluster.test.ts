/**
 * Connect with Kit with three instances on one PostgreSQL database: Kit rotates the refresh token
 * on every refresh, so when the access token expires in the middle of a backlog exactly one
 * instance refreshes it, the others take its tokens, and no delivery is lost or failed. Skipped
 * without PostgreSQL (fails in CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { makeEvent, postEvent, waitFor } from './helpers/events.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()

const PUBLIC_URL = 'http://127.0.0.1:18788'
const REDIRECT = `${PUBLIC_URL}/oauth/kit/callback`
const CLIENT = { clientId: 'kit_app_cluster', clientSecret: 'kit_app_cluster_secret_0123456789' }

describe.skipIf(!pgUp)('Connect with Kit on three instances sharing PostgreSQL', () => {
  let c: PipelineHarness

  beforeAll(async () => {
    c = await PipelineHarness.start({
      kit: { apiKeys: [KEY], listLagMs: 0, latencyMs: 10, oauth: { ...CLIENT, redirectUris: [REDIRECT], account: KEY, expiresInS: 3600 } },
      postgres: 'kitoauth',
      instances: 3,
      config: { publicUrl: PUBLIC_URL, kitOAuth: { ...CLIENT, redirectUri: REDIRECT }, databasePoolSize: 4, apiRateLimit: 10_000 },
    })
  }, 60_000)
  // Three instances each finish their work in flight before closing: more than a hook's default 10 s on a busy machine.
  afterAll(async () => {
    await c?.close()
  }, 60_000)

  it('refreshes a token that expires mid-backlog once, and every delivery still succeeds', async () => {
    const [first] = c.apps as [FastifyInstance]
    const start = await first.inject({ method: 'POST', url: '/api/v1/connection/oauth/start', headers: asA, payload: {} })
    const atKit = await fetch(start.json().authorize_url as string, { redirect: 'manual' })
    const back = new URL(atKit.headers.get('location') as string)
    // Kit sends the popup back to any instance.
    expect((await c.apps[2]!.inject({ method: 'GET', url: `${back.pathname}${back.search}` })).statusCode).toBe(200)

    const events = Array.from({ length: 45 }, (_, i) => makeEvent({ memberId: `m_${i}`, email: `member${i}@example.com` }))
    await Promise.all(events.map((event, i) => postEvent(c.apps[i % 3]!, c.secret, event)))
    const statuses = async (): Promise<string[]> => {
      const res = await first.inject({ method: 'GET', url: '/api/v1/deliveries?limit=100', headers: asA })
      return (res.json() as { items: { status: string }[] }).items.map((d) => d.status)
    }
    const succeeded = async () => (await statuses()).filter((s) => s === 'succeeded').length
    await waitFor(async () => ((await succeeded()) >= 8 ? true : undefined), { what: 'the backlog under way', timeoutMs: 30_000 })
    expect(await succeeded()).toBeLessThan(events.length)
    c.kit.oauth!.expireAll()

    await waitFor(async () => ((await succeeded()) === events.length ? true : undefined), { what: 'every delivery', timeoutMs: 60_000 })
    const refreshes = c.kit.oauth!.tokenRequests.filter((r) => r.grantType === 'refresh_token')
    expect(refreshes).toEqual([expect.objectContaining({ status: 200 })])
    expect(await statuses()).toEqual(events.map(() => 'succeeded'))
    for (const app of c.apps) {
      const conn = (await app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()
      expect(conn).toMatchObject({ status: 'connected', kind: 'oauth' })
    }
    // The expired token was refused at most once per delivery slot in flight (two per instance), then never sent again.
    const grant = c.kit.oauth!.grants[0]!
    const refused = c.kit.requests.filter((r) => r.status === 401)
    expect(refused.length).toBeGreaterThan(0)
    expect(refused.length).toBeLessThanOrEqual(6)
    expect(c.kit.requests.at(-1)?.key).toBe(grant.accessToken)
  }, 120_000)
})
