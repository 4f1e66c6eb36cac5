import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { bearerMatches } from '../server/plugins/metrics.ts'
import { buildTestApp } from './helpers/app.ts'
import { goodSecrets, tempDb } from './helpers/config.ts'
import { freePort, startServer } from './helpers/server-process.ts'

const TOKEN = 'metrics-token-0123456789abcdef'

let app: FastifyInstance | null = null
afterEach(async () => {
  await app?.close()
  app = null
})

async function build(metricsToken: string | null): Promise<FastifyInstance> {
  ;({ app } = await buildTestApp({ metricsToken }))
  return app
}

const OPERATOR_PATHS = ['/metrics', '/docs/openapi.json']

describe('METRICS_TOKEN', () => {
  it.each(OPERATOR_PATHS)('%s answers 401 without the token, or with a wrong one, when it is set', async (url) => {
    const server = await build(TOKEN)
    for (const authorization of [
      undefined,
      'Bearer wrong-token',
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      TOKEN,
      `Basic ${TOKEN}`,
    ]) {
      const res = await server.inject({ url, headers: authorization === undefined ? {} : { authorization } })
      expect(res.statusCode, String(authorization)).toBe(401)
      expect(res.headers['www-authenticate']).toBe('Bearer')
      expect(res.json()).toEqual({
        error: { code: 'invalid_token', message: 'Send the operators\' token as "Authorization: Bearer <METRICS_TOKEN>".' },
      })
      expect(res.body).not.toContain(TOKEN)
    }
  })

  it.each(OPERATOR_PATHS)('%s answers with the right token', async (url) => {
    const server = await build(TOKEN)
    const res = await server.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain(url === '/metrics' ? 'kit_events_received_total' : '"openapi"')
  })

  it.each(OPERATOR_PATHS)('%s stays open when no token is set', async (url) => {
    const server = await build(null)
    expect((await server.inject(url)).statusCode).toBe(200)
  })

  it('leaves the health checks and the event intake alone', async () => {
    const server = await build(TOKEN)
    expect((await server.inject('/healthz')).statusCode).toBe(200)
    expect((await server.inject('/readyz')).statusCode).toBe(200)
    expect((await server.inject({ method: 'POST', url: '/events', payload: {} })).statusCode).toBe(401)
  })
})

describe('METRICS_TOKEN in production', () => {
  it('is required: a production process without it refuses to start instead of serving the operator endpoints openly', async () => {
    for (const NODE_ENV of ['production', 'prod']) {
      const started = startServer({ NODE_ENV, METRICS_TOKEN: '', DATABASE_PATH: tempDb(), ...goodSecrets() }, await freePort())
      await expect(started, NODE_ENV).rejects.toThrow(/server exited early: [\s\S]*METRICS_TOKEN is required in production/)
    }
  }, 60_000)
})

describe('bearerMatches', () => {
  it('accepts only the exact token after "Bearer "', () => {
    expect(bearerMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true)
    expect(bearerMatches(`Bearer ${TOKEN} `, TOKEN)).toBe(false)
    expect(bearerMatches(`bearer ${TOKEN}`, TOKEN)).toBe(false)
    expect(bearerMatches('Bearer ', TOKEN)).toBe(false)
    expect(bearerMatches(undefined, TOKEN)).toBe(false)
  })
})
