import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildTestApp, TEST_ORIGIN } from './helpers/app.ts'
import { auth, signToken, tokenFor } from './helpers/tokens.ts'

let app: FastifyInstance

beforeEach(async () => {
  ;({ app } = await buildTestApp({ apiRateLimit: 3 }))
})
afterEach(async () => {
  await app.close()
})

function expectApiHeaders(res: LightMyRequestResponse): void {
  expect(res.headers['x-content-type-options']).toBe('nosniff')
  expect(res.headers['cache-control']).toBe('no-store')
}

describe('the panel page', () => {
  it('is served with a Content-Security-Policy that allows only its own scripts and App Station as the framer', async () => {
    const res = await app.inject('/panel/')
    expect(res.statusCode).toBe(200)
    const policy = String(res.headers['content-security-policy'])
    const directives = Object.fromEntries(
      policy.split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/)
        return [name, values.join(' ')]
      }),
    )
    expect(directives).toEqual({
      'default-src': "'self'",
      'script-src': "'self'",
      'object-src': "'none'",
      'base-uri': "'none'",
      'form-action': "'none'",
      'frame-ancestors': TEST_ORIGIN,
    })
  })

  it('contains no inline script or style attribute that the policy would block', async () => {
    const html = (await app.inject('/panel/')).body
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i)
    expect(html).not.toMatch(/\sstyle=/i)
    expect(html).not.toMatch(/<style/i)
  })
})

describe('settings API answers', () => {
  const owner = () => auth(tokenFor('c_alpha'))

  it('are never cached or content-sniffed when they succeed', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/connection', headers: owner() })
    expect(res.statusCode).toBe(200)
    expectApiHeaders(res)
  })

  it('carry the same headers on every kind of error', async () => {
    const answers = [
      await app.inject({ method: 'GET', url: '/api/v1/connection' }),
      await app.inject({ method: 'GET', url: '/api/v1/connection', headers: auth(signToken({ claims: { roles: ['member'] } })) }),
      await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: owner(), payload: { nope: true } }),
      await app.inject({
        method: 'PUT',
        url: '/api/v1/mappings',
        headers: { ...owner(), 'content-type': 'application/json' },
        payload: '{not json',
      }),
      await app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: owner() }),
    ]
    expect(answers.map((a) => a.statusCode)).toEqual([401, 403, 400, 400, 409])
    for (const res of answers) expectApiHeaders(res)
  })

  it('carry them on a rate-limited answer', async () => {
    const headers = auth(tokenFor('c_bravo'))
    for (let i = 0; i < 3; i += 1) await app.inject({ method: 'GET', url: '/api/v1/connection', headers })
    const res = await app.inject({ method: 'GET', url: '/api/v1/connection', headers })
    expect(res.statusCode).toBe(429)
    expectApiHeaders(res)
  })

  it('carry them, in the usual error shape, for an unknown path under /api/v1', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/no-such-thing', headers: owner() })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({ error: { code: 'not_found', message: 'Nothing at GET /api/v1/no-such-thing' } })
    expectApiHeaders(res)
    const anonymous = await app.inject({ method: 'POST', url: '/api/v1/connection/nope' })
    expect(anonymous.statusCode).toBe(404)
    expectApiHeaders(anonymous)
  })

  it('carry them, in the usual error shape, for a URL the router cannot decode', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/syncs/%ZZ', headers: owner() })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ error: { code: 'invalid_request', message: expect.stringContaining('cannot be read') } })
    expectApiHeaders(res)
  })
})
