/**
 * Two instances of the real app on one PostgreSQL database draw from the same allowances: the
 * settings API per user, Kit key checks per community and failed session tokens per source. A
 * request to either instance counts for both. Skipped without PostgreSQL (fails in CI).
 */
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import type { Config } from '../server/config.ts'
import type { KitStandin } from './kit-standin/server.ts'
import { KEY, PipelineHarness } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'
import { auth, sessionFor, signToken } from './helpers/tokens.ts'

const pgUp = await postgresAvailable()

let h: PipelineHarness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

/** Two instances on a fresh database; `limits` sets their allowances. */
async function twoInstances(
  limits: Partial<Config>,
): Promise<{ a: FastifyInstance; b: FastifyInstance; kit: KitStandin; databaseUrl: string }> {
  h = await PipelineHarness.start({ postgres: 'kitlimits', instances: 2, config: limits, pipeline: { autoStart: false } })
  const [a, b] = h.apps as [FastifyInstance, FastifyInstance]
  return { a, b, kit: h.kit, databaseUrl: h.databaseUrl! }
}

const owner = sessionFor('c_alpha')
const forged = sessionFor('c_alpha', { secret: 'another-secret-that-is-at-least-32-bytes' })
const getConnection = (app: FastifyInstance, headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
  app.inject({ method: 'GET', url: '/api/v1/connection', headers, remoteAddress })

describe.skipIf(!pgUp)('allowances shared by instances on PostgreSQL', () => {
  it("counts one user's settings requests on both instances against one allowance, exactly, even when they arrive together", async () => {
    const { a, b } = await twoInstances({ apiRateLimit: 6 })
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => getConnection(i % 2 === 0 ? a : b, owner)))
    const statuses = answers.map((res) => res.statusCode).sort()
    expect(statuses).toEqual([...Array(6).fill(200), ...Array(4).fill(429)])
    for (const refused of answers.filter((res) => res.statusCode === 429)) {
      expect(refused.json().error.code).toBe('rate_limited')
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    }
    // Another user of the community has an allowance of their own.
    expect((await getConnection(b, auth(signToken({ claims: { cid: 'c_alpha', sub: 'u_admin' } })))).statusCode).toBe(200)
  })

  it('counts Kit key checks of one community on both instances, refusing the third without calling Kit', async () => {
    const { a, b, kit } = await twoInstances({ kitCheckRateLimit: 2 })
    expect((await a.inject({ method: 'PUT', url: '/api/v1/connection', headers: owner, payload: { api_key: KEY } })).statusCode).toBe(200)
    expect((await b.inject({ method: 'POST', url: '/api/v1/connection/test', headers: owner })).statusCode).toBe(200)
    const kitRequests = kit.requests.length
    const refused = await a.inject({ method: 'POST', url: '/api/v1/connection/test', headers: owner })
    expect(refused.statusCode).toBe(429)
    expect(refused.json().error.code).toBe('rate_limited')
    expect(kit.requests.length).toBe(kitRequests)
  })

  it('counts failed session tokens from one source on both instances; a valid token still passes on either', async () => {
    const { a, b, databaseUrl } = await twoInstances({ sessionFailureLimit: 2 })
    expect((await getConnection(a, forged, '203.0.113.9')).statusCode).toBe(401)
    expect((await getConnection(b, forged, '203.0.113.9')).statusCode).toBe(401)
    const over = await getConnection(a, forged, '203.0.113.9')
    expect(over.statusCode).toBe(429)
    expect(over.json().error.code).toBe('rate_limited')
    expect((await getConnection(b, forged, '203.0.113.9')).statusCode).toBe(429)
    expect((await getConnection(a, owner, '203.0.113.9')).statusCode).toBe(200)
    expect((await getConnection(b, owner, '203.0.113.9')).statusCode).toBe(200)
    expect((await getConnection(b, forged, '198.51.100.3')).statusCode).toBe(401)

    // The table holds digests: neither the address nor a user or community id.
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    try {
      const { rows } = await client.query<{ key: string }>('SELECT key FROM rate_limits')
      expect(rows.length).toBeGreaterThan(0)
      for (const { key } of rows) expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/)
    } finally {
      await client.end()
    }
  })
})
