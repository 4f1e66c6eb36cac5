import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from './helpers/app.ts'
import { auth, signToken } from './helpers/tokens.ts'

let app: FastifyInstance

beforeEach(async () => {
  ;({ app } = await buildTestApp())
})
afterEach(async () => {
  await app.close()
})

const getConnection = (headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: '/api/v1/connection', headers })

async function expectInvalidSession(headers: Record<string, string>) {
  const res = await getConnection(headers)
  expect(res.statusCode).toBe(401)
  expect(res.json().error.code).toBe('invalid_session')
  expect(typeof res.json().error.message).toBe('string')
}

describe('session tokens', () => {
  it('accepts a well-formed owner token', async () => {
    const res = await getConnection(auth(signToken()))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ connected: false, status: 'disconnected' })
  })

  it('accepts an admin token', async () => {
    expect((await getConnection(auth(signToken({ claims: { roles: ['admin'] } })))).statusCode).toBe(200)
  })

  it('refuses a request without a token', async () => {
    await expectInvalidSession({})
  })

  it('refuses a malformed authorization header', async () => {
    await expectInvalidSession({ authorization: 'Token abc' })
    await expectInvalidSession({ authorization: 'Bearer not.a.jwt' })
  })

  it('refuses an unsigned token (alg none)', async () => {
    await expectInvalidSession(auth(signToken({ alg: 'none' })))
  })

  it('refuses a token signed with another HMAC algorithm', async () => {
    await expectInvalidSession(auth(signToken({ alg: 'HS512' })))
  })

  it('refuses a token signed with another secret', async () => {
    await expectInvalidSession(auth(signToken({ secret: 'another-secret-that-is-also-32-bytes-long!' })))
  })

  it('refuses an expired token beyond the 10 s tolerance', async () => {
    const now = Math.floor(Date.now() / 1000)
    await expectInvalidSession(auth(signToken({ claims: { iat: now - 300, exp: now - 15 } })))
  })

  it('accepts a token expired within the 10 s tolerance', async () => {
    const now = Math.floor(Date.now() / 1000)
    const res = await getConnection(auth(signToken({ claims: { iat: now - 300, exp: now - 4 } })))
    expect(res.statusCode).toBe(200)
  })

  it('refuses a token whose iat is not a number', async () => {
    const now = Math.floor(Date.now() / 1000)
    for (const iat of [String(now), null, [now], { at: now }]) {
      await expectInvalidSession(auth(signToken({ claims: { iat } })))
    }
  })

  it('refuses a token issued more than 10 s in the future', async () => {
    const now = Math.floor(Date.now() / 1000)
    await expectInvalidSession(auth(signToken({ claims: { iat: now + 60, exp: now + 120 } })))
  })

  it('accepts a token issued a few seconds ahead of the server clock', async () => {
    const now = Math.floor(Date.now() / 1000)
    expect((await getConnection(auth(signToken({ claims: { iat: now + 5, exp: now + 120 } })))).statusCode).toBe(200)
  })

  it('refuses a token that lives longer than the default maximum of 600 s', async () => {
    const now = Math.floor(Date.now() / 1000)
    const res = await getConnection(auth(signToken({ claims: { iat: now, exp: now + 601 } })))
    expect(res.statusCode).toBe(401)
    expect(res.json().error).toMatchObject({ code: 'invalid_session', message: expect.stringMatching(/600 s/) })
    expect((await getConnection(auth(signToken({ claims: { iat: now, exp: now + 600 } })))).statusCode).toBe(200)
  })

  it('refuses a token that lives longer than SESSION_MAX_LIFETIME_S', async () => {
    await app.close()
    ;({ app } = await buildTestApp({ sessionMaxLifetimeS: 60 }))
    const now = Math.floor(Date.now() / 1000)
    await expectInvalidSession(auth(signToken({ claims: { iat: now, exp: now + 120 } })))
    expect((await getConnection(auth(signToken({ claims: { iat: now, exp: now + 60 } })))).statusCode).toBe(200)
  })

  it('refuses a token from another issuer', async () => {
    await expectInvalidSession(auth(signToken({ claims: { iss: 'https://evil.example' } })))
  })

  it('refuses a token for another plugin', async () => {
    await expectInvalidSession(auth(signToken({ claims: { aud: 'other-plugin' } })))
  })

  for (const claim of ['cid', 'sub', 'exp', 'iat', 'iss', 'aud']) {
    it(`refuses a token without ${claim}`, async () => {
      await expectInvalidSession(auth(signToken({ omit: [claim] })))
    })
  }

  it('refuses a token whose cid is empty', async () => {
    await expectInvalidSession(auth(signToken({ claims: { cid: '' } })))
  })

  it('answers 403 to a valid token without owner or admin role', async () => {
    for (const roles of [['member'], [], 'owner']) {
      const res = await getConnection(auth(signToken({ claims: { roles } })))
      expect(res.statusCode).toBe(403)
      expect(res.json().error.code).toBe('forbidden')
    }
  })

  it('guards every settings endpoint', async () => {
    const routes: [string, string][] = [
      ['GET', '/api/v1/connection'],
      ['PUT', '/api/v1/connection'],
      ['DELETE', '/api/v1/connection'],
      ['POST', '/api/v1/connection/test'],
      ['GET', '/api/v1/mappings'],
      ['PUT', '/api/v1/mappings'],
      ['GET', '/api/v1/kit/tags'],
      ['POST', '/api/v1/kit/tags'],
      ['GET', '/api/v1/kit/custom-fields'],
      ['GET', '/api/v1/kit/forms'],
      ['GET', '/api/v1/kit/sequences'],
    ]
    for (const [method, url] of routes) {
      const res = await app.inject({ method: method as 'GET', url })
      expect(res.statusCode, `${method} ${url}`).toBe(401)
    }
  })
})
