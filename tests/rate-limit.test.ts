import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { MAX_INTERACTIVE_WAITING } from '../server/kit/budget.ts'
import { buildTestApp } from './helpers/app.ts'
import { PipelineHarness, type HarnessOptions } from './helpers/pipeline.ts'
import { makeEvent, postEvent, signedHeaders, waitFor } from './helpers/events.ts'
import { auth, signToken, tokenFor } from './helpers/tokens.ts'

const KEY = 'kit_live_key_alpha_0001'
const KEY_B = 'kit_live_key_bravo_0002'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

async function app(overrides: Parameters<typeof buildTestApp>[0] = {}): Promise<FastifyInstance> {
  const built = await buildTestApp(overrides)
  cleanups.push(() => built.app.close())
  return built.app
}

/** The app with the Kit stand-in, for the limits that count Kit calls. */
async function withKit(options: HarnessOptions = {}): Promise<PipelineHarness> {
  const h = await PipelineHarness.start({ ...options, kit: { apiKeys: [KEY, KEY_B] } })
  cleanups.push(() => h.close())
  return h
}

const asUser = (cid: string, sub: string) => auth(signToken({ claims: { cid, sub } }))

function expectRateLimited(res: LightMyRequestResponse, code = 'rate_limited'): number {
  expect(res.statusCode).toBe(code === 'rate_limited' ? 429 : 503)
  const body = res.json() as { error: { code: string; message: string } }
  expect(Object.keys(body)).toEqual(['error'])
  expect(body.error.code).toBe(code)
  const seconds = Number(res.headers['retry-after'])
  expect(Number.isInteger(seconds)).toBe(true)
  expect(seconds).toBeGreaterThanOrEqual(1)
  expect(body.error.message).toMatch(new RegExp(`try again in ${seconds} s\\.$`, 'i'))
  return seconds
}

describe('settings API rate limit per community and user', () => {
  it('answers 429 rate_limited with Retry-After after 120 requests a minute from one user', async () => {
    const server = await app()
    const headers = asUser('c_alpha', 'u_owner')
    for (let i = 0; i < 120; i += 1) {
      const res = await server.inject({ method: 'GET', url: '/api/v1/connection', headers })
      expect(res.statusCode, `request ${i + 1}`).toBe(200)
    }
    const refused = await server.inject({ method: 'GET', url: '/api/v1/mappings', headers })
    const seconds = expectRateLimited(refused)
    expect(seconds).toBeLessThanOrEqual(60)
  })

  it('covers every settings API route, syncs and bulk retry included: no token 401, a member 403, then 429 once the allowance is spent', async () => {
    const server = await app({ apiRateLimit: 3 })
    const doc = (await server.inject('/docs/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> }
    const routes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/api/v1/'))
      .flatMap(([path, methods]) =>
        Object.keys(methods).map((method) => ({ method: method.toUpperCase() as 'GET', url: path.replace(/\{[^}]+\}/g, 'x') })),
      )
    const named = routes.map((r) => `${r.method} ${r.url}`)
    expect(named).toEqual(
      expect.arrayContaining([
        'POST /api/v1/syncs',
        'GET /api/v1/syncs/x',
        'POST /api/v1/syncs/x/cancel',
        'POST /api/v1/deliveries/retry',
        'GET /api/v1/deliveries/replayable',
      ]),
    )
    const member = auth(signToken({ claims: { cid: 'c_alpha', sub: 'u_member', roles: ['member'] } }))
    for (const route of routes) {
      const what = `${route.method} ${route.url}`
      const body =
        route.method === 'GET' || route.method === 'DELETE' ? {} : { headers: { 'content-type': 'text/csv' }, payload: 'email,member_id\n' }
      const anonymous = await server.inject({ ...route, ...body })
      expect(anonymous.statusCode, what).toBe(401)
      expect((await server.inject({ ...route, ...body, headers: { ...body.headers, ...member } })).statusCode, what).toBe(403)
    }
    const headers = asUser('c_alpha', 'u_owner')
    for (let i = 0; i < 3; i += 1) await server.inject({ method: 'GET', url: '/api/v1/connection', headers })
    for (const route of routes) expectRateLimited(await server.inject({ ...route, headers }))
  })

  it('keeps separate allowances for another user of the same community and for the same user elsewhere', async () => {
    const server = await app({ apiRateLimit: 3 })
    const headers = asUser('c_alpha', 'u_owner')
    for (let i = 0; i < 3; i += 1) await server.inject({ method: 'GET', url: '/api/v1/connection', headers })
    expectRateLimited(await server.inject({ method: 'GET', url: '/api/v1/connection', headers }))

    const colleague = await server.inject({ method: 'GET', url: '/api/v1/connection', headers: asUser('c_alpha', 'u_admin') })
    expect(colleague.statusCode).toBe(200)
    const elsewhere = await server.inject({ method: 'GET', url: '/api/v1/connection', headers: asUser('c_bravo', 'u_owner') })
    expect(elsewhere.statusCode).toBe(200)
  })

  it('keys the limit on the verified session, not on the address every request comes from', async () => {
    const server = await app({ apiRateLimit: 3 })
    for (let i = 0; i < 20; i += 1) {
      const res = await server.inject({ method: 'GET', url: '/api/v1/connection', headers: asUser('c_alpha', `u_${i}`) })
      expect(res.statusCode).toBe(200)
    }
    const first = asUser('c_alpha', 'u_0')
    for (let i = 0; i < 2; i += 1) await server.inject({ method: 'GET', url: '/api/v1/connection', headers: first })
    expectRateLimited(await server.inject({ method: 'GET', url: '/api/v1/connection', headers: first }))
  })

  it('refuses a bad token with 401 before counting anything against the user', async () => {
    const server = await app({ apiRateLimit: 2 })
    const forged = auth(signToken({ claims: { cid: 'c_alpha', sub: 'u_owner' }, secret: 'another-secret-that-is-at-least-32-bytes' }))
    for (let i = 0; i < 5; i += 1) {
      expect((await server.inject({ method: 'GET', url: '/api/v1/connection', headers: forged })).statusCode).toBe(401)
    }
    const real = asUser('c_alpha', 'u_owner')
    expect((await server.inject({ method: 'GET', url: '/api/v1/connection', headers: real })).statusCode).toBe(200)
    expect((await server.inject({ method: 'GET', url: '/api/v1/connection', headers: real })).statusCode).toBe(200)
    expectRateLimited(await server.inject({ method: 'GET', url: '/api/v1/connection', headers: real }))
  })

  it('does not limit /healthz, and the default event allowance takes 150 events from one source at once', async () => {
    const secret = randomBytes(32).toString('base64')
    const server = await app({ apiRateLimit: 2, eventsSecrets: [secret] })
    for (let i = 0; i < 150; i += 1) {
      expect((await server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    }
    for (let i = 0; i < 150; i += 1) {
      expect((await postEvent(server, secret, makeEvent({ communityId: 'c_alpha' }))).statusCode).toBe(202)
    }
    const headers = asUser('c_alpha', 'u_owner')
    for (let i = 0; i < 2; i += 1) await server.inject({ method: 'GET', url: '/api/v1/connection', headers })
    expectRateLimited(await server.inject({ method: 'GET', url: '/api/v1/connection', headers }))
  })
})

describe('failed session tokens per source address', () => {
  const forged = () => auth(signToken({ claims: { cid: 'c_alpha', sub: 'u_owner' }, secret: 'another-secret-that-is-at-least-32-bytes' }))
  const from = (remoteAddress: string, headers: Record<string, string>) =>
    ({ method: 'GET', url: '/api/v1/connection', headers, remoteAddress }) as const

  it('answers 429 instead of 401 once a source sent more than SESSION_FAILURE_LIMIT failing tokens a minute; a valid token still passes', async () => {
    const server = await app({ sessionFailureLimit: 3 })
    for (let i = 0; i < 3; i += 1) {
      expect((await server.inject(from('203.0.113.7', forged()))).statusCode, `failure ${i + 1}`).toBe(401)
    }
    const seconds = expectRateLimited(await server.inject(from('203.0.113.7', forged())))
    expect(seconds).toBeLessThanOrEqual(60)
    // A missing token counts as a failure too.
    expectRateLimited(await server.inject(from('203.0.113.7', {})))

    expect((await server.inject(from('203.0.113.7', asUser('c_alpha', 'u_owner')))).statusCode).toBe(200)
    expect((await server.inject(from('198.51.100.2', forged()))).statusCode).toBe(401)
  })

  it('does not count a genuine token that merely expired: it keeps answering 401 so the panel asks for a new one', async () => {
    const server = await app({ sessionFailureLimit: 2 })
    const now = Math.floor(Date.now() / 1000)
    const expired = auth(signToken({ claims: { iat: now - 200, exp: now - 60 } }))
    for (let i = 0; i < 6; i += 1) {
      const res = await server.inject(from('203.0.113.8', expired))
      expect(res.statusCode, `expired ${i + 1}`).toBe(401)
      expect(res.json().error.code).toBe('invalid_session')
    }
    expect((await server.inject(from('203.0.113.8', forged()))).statusCode).toBe(401)
    expect((await server.inject(from('203.0.113.8', forged()))).statusCode).toBe(401)
    expectRateLimited(await server.inject(from('203.0.113.8', forged())))
    expect((await server.inject(from('203.0.113.8', expired))).statusCode).toBe(401)
  })
})

describe('event intake per source address', () => {
  it('refuses events over EVENTS_RATE_LIMIT a minute from one source with 429 and stores nothing of them; another source goes on', async () => {
    const secret = randomBytes(32).toString('base64')
    const server = await app({ eventsRateLimit: 5, eventsSecrets: [secret] })
    const fromSource = (remoteAddress: string, event: Record<string, unknown>) => {
      const payload = JSON.stringify(event)
      return server.inject({ method: 'POST', url: '/events', payload, headers: signedHeaders(payload, { secret }), remoteAddress })
    }
    for (let i = 0; i < 5; i += 1) {
      expect((await fromSource('192.0.2.10', makeEvent())).statusCode, `event ${i + 1}`).toBe(202)
    }
    const over = makeEvent()
    const seconds = expectRateLimited(await fromSource('192.0.2.10', over))
    expect(seconds).toBeLessThanOrEqual(60)
    expect(server.sqlite.prepare('SELECT count(*) AS n FROM events WHERE id = ?').get(over.id)).toEqual({ n: 0 })
    expect(server.sqlite.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 5 })

    expect((await fromSource('192.0.2.11', makeEvent())).statusCode).toBe(202)
    expect((await server.inject({ method: 'GET', url: '/healthz', remoteAddress: '192.0.2.10' })).statusCode).toBe(200)
  })
})

describe('Kit key checks per community', () => {
  it('allows 10 key saves and connection tests a minute per community, then 429 without calling Kit', async () => {
    const { kit, app: server } = await withKit()
    const owner = auth(tokenFor('c_alpha'))
    const admin = asUser('c_alpha', 'u_admin')
    for (let i = 0; i < 5; i += 1) {
      const saved = await server.inject({ method: 'PUT', url: '/api/v1/connection', headers: owner, payload: { api_key: KEY } })
      expect(saved.statusCode).toBe(200)
      const tested = await server.inject({ method: 'POST', url: '/api/v1/connection/test', headers: admin })
      expect(tested.statusCode).toBe(200)
    }
    const kitRequestsBefore = kit.requests.length

    expectRateLimited(await server.inject({ method: 'PUT', url: '/api/v1/connection', headers: owner, payload: { api_key: KEY } }))
    expectRateLimited(await server.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asUser('c_alpha', 'u_other') }))
    expect(kit.requests.length).toBe(kitRequestsBefore)

    const stillReadable = await server.inject({ method: 'GET', url: '/api/v1/connection', headers: owner })
    expect(stillReadable.statusCode).toBe(200)
    const otherCommunity = await server.inject({
      method: 'PUT',
      url: '/api/v1/connection',
      headers: auth(tokenFor('c_bravo')),
      payload: { api_key: KEY_B },
    })
    expect(otherCommunity.statusCode).toBe(200)
  })
})

describe('waiting interactive Kit calls', () => {
  it(`answers 503 kit_busy with Retry-After at once when ${MAX_INTERACTIVE_WAITING} panel calls already wait for the budget`, async () => {
    const h = await withKit({ config: { kitRateLimit: 10, kitRateWindowMs: 2000 } })
    const { kit, app: server } = h
    const owner = auth(tokenFor('c_alpha'))
    await h.connect(owner, KEY)

    const credential = server.kit.credentialIdFor(KEY)
    while (server.kitBudget.usage(credential).inWindow < 10) (await server.kitBudget.acquire(credential, 'interactive'))()

    const waiting = Array.from({ length: MAX_INTERACTIVE_WAITING }, (_, i) =>
      server.inject({ method: 'POST', url: '/api/v1/kit/tags', headers: owner, payload: { name: `Waiting ${i}` } }),
    )
    await waitFor(() => server.kitBudget.usage(credential).waiting === MAX_INTERACTIVE_WAITING, { what: 'calls waiting' })

    const refused = await server.inject({ method: 'POST', url: '/api/v1/kit/tags', headers: owner, payload: { name: 'One too many' } })
    const seconds = expectRateLimited(refused, 'kit_busy')
    expect(seconds).toBeLessThanOrEqual(2)
    expectRateLimited(await server.inject({ method: 'GET', url: '/api/v1/kit/forms', headers: owner }), 'kit_busy')
    expect(server.kitBudget.usage(credential).waiting).toBe(MAX_INTERACTIVE_WAITING)

    const answers = await Promise.all(waiting)
    expect(answers.map((a) => a.statusCode)).toEqual(Array(MAX_INTERACTIVE_WAITING).fill(201))
    const tags = kit.account(KEY).tags.map((t) => t.name)
    expect(tags).not.toContain('One too many')
  })
})
