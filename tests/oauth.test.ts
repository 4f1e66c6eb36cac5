/**
 * Connect with Kit (OAuth) through the real app and the Kit stand-in's Kit app: the authorization
 * round trip, what the state refuses, that no token reaches an answer or a log, that tokens are
 * sealed at rest, refreshing (ahead of expiry, on Kit's "expired", refused), and revocation.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Config } from '../server/config.ts'
import { decryptSecret } from '../server/lib/crypto.ts'
import type { StandinOAuthOptions } from './kit-standin/server.ts'
import { waitFor } from './helpers/events.ts'
import { startPlatformReceiver } from './helpers/platform-receiver.ts'
import { asA, asB, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { sessionFor } from './helpers/tokens.ts'

const PUBLIC_URL = 'http://127.0.0.1:18787'
const REDIRECT = `${PUBLIC_URL}/oauth/kit/callback`
const CLIENT = { clientId: 'kit_app_client_1', clientSecret: 'kit_app_secret_0123456789abcdef' }

let h: PipelineHarness | undefined

afterEach(async () => {
  await h?.close()
  h = undefined
})

async function start(oauth: Partial<StandinOAuthOptions> = {}, config: Partial<Config> = {}): Promise<PipelineHarness> {
  h = await PipelineHarness.start({
    kit: { listLagMs: 0, oauth: { ...CLIENT, redirectUris: [REDIRECT], account: KEY, ...oauth } },
    config: { publicUrl: PUBLIC_URL, kitOAuth: { ...CLIENT, redirectUri: REDIRECT }, ...config },
  })
  return h
}

/** The panel's click: the consent page's address for this session. */
async function startAuthorization(harness: PipelineHarness, headers: Record<string, string> = asA, body: object = {}): Promise<URL> {
  const res = await harness.app.inject({ method: 'POST', url: '/api/v1/connection/oauth/start', headers, payload: body })
  expect(res.statusCode, res.body).toBe(200)
  return new URL((res.json() as { authorize_url: string }).authorize_url)
}

/** What the popup does at Kit: the consent page sends it back to the callback, with a code or an error. */
async function atKit(authorizeUrl: URL): Promise<URL> {
  const res = await fetch(authorizeUrl, { redirect: 'manual' })
  expect(res.status).toBe(302)
  return new URL(res.headers.get('location') as string)
}

/** The popup arriving at the callback page. */
function callback(harness: PipelineHarness, url: URL) {
  return harness.app.inject({ method: 'GET', url: `${url.pathname}${url.search}` })
}

async function connectWithKit(harness: PipelineHarness, headers: Record<string, string> = asA) {
  const page = await callback(harness, await atKit(await startAuthorization(harness, headers)))
  expect(page.statusCode, page.body).toBe(200)
  return page
}

const connection = async (harness: PipelineHarness, headers: Record<string, string> = asA) =>
  (await harness.app.inject({ method: 'GET', url: '/api/v1/connection', headers })).json() as Record<string, unknown>

const tokenRequests = (harness: PipelineHarness, grantType: string) =>
  harness.kit.oauth!.tokenRequests.filter((r) => r.grantType === grantType)

/** Every access and refresh token Kit ever issued in this test. */
function issuedTokens(harness: PipelineHarness): string[] {
  return harness.kit.oauth!.grants.flatMap((g) => [g.accessToken, g.refreshToken])
}

describe('Connect with Kit: the authorization', () => {
  it('is offered only with the client settings and PUBLIC_URL', async () => {
    const harness = await PipelineHarness.start({})
    h = harness
    expect(await connection(harness)).not.toHaveProperty('oauth_available')
    const res = await harness.app.inject({ method: 'POST', url: '/api/v1/connection/oauth/start', headers: asA, payload: {} })
    expect(res.statusCode).toBe(404)
    expect((await harness.app.inject({ method: 'GET', url: '/oauth/kit/callback?code=x&state=y' })).statusCode).toBe(404)
  })

  it('sends the owner to Kit with the client, the redirect, a state, an S256 challenge and the community as tenant', async () => {
    const harness = await start()
    expect(await connection(harness)).toMatchObject({ status: 'disconnected', oauth_available: true })
    const url = await startAuthorization(harness)
    expect(`${url.origin}${url.pathname}`).toBe(`${harness.kit.url}/v4/oauth/authorize`)
    const q = url.searchParams
    expect(q.get('client_id')).toBe(CLIENT.clientId)
    expect(q.get('response_type')).toBe('code')
    expect(q.get('redirect_uri')).toBe(REDIRECT)
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{40,}$/)
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(q.get('code_challenge_method')).toBe('S256')
    expect(q.get('tenant_name')).toContain('c_alpha')
    expect(q.has('client_secret')).toBe(false)
    const again = await startAuthorization(harness)
    expect(again.searchParams.get('state')).not.toBe(q.get('state'))
    expect(again.searchParams.get('code_challenge')).not.toBe(q.get('code_challenge'))
  })

  it('connects the community by OAuth: kind oauth, the account, no key hint, and no token anywhere the browser sees', async () => {
    const harness = await start()
    const authorizeUrl = await startAuthorization(harness)
    const back = await atKit(authorizeUrl)
    const page = await callback(harness, back)
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(page.headers['referrer-policy']).toBe('no-referrer')
    expect(page.headers['cache-control']).toBe('no-store')
    expect(page.body).toContain('Kit is connected')
    // The page tells its opener, at the panel's exact origin, the outcome only.
    expect(page.body).toContain('{"type":"kit-oauth","ok":true}')
    expect(page.body).toContain(`"${PUBLIC_URL}"`)
    expect(page.body).not.toContain("'*'")

    const body = await connection(harness)
    expect(body).toMatchObject({
      connected: true,
      status: 'connected',
      kind: 'oauth',
      key_hint: null,
      account: { name: 'Stand-in Creator' },
    })
    const grant = harness.kit.oauth!.grants[0]!
    expect(grant.tenantName).toContain('c_alpha')

    const code = back.searchParams.get('code') as string
    const seen = [authorizeUrl.toString(), page.body, JSON.stringify(body), harness.logs.join('\n')].join('\n')
    for (const secret of [...issuedTokens(harness), code, CLIENT.clientSecret]) expect(seen).not.toContain(secret)

    // As after saving a key, Kit's webhooks are registered for the connection, with its token.
    await waitFor(() => (harness.kit.account(KEY).webhooks.length > 0 ? true : undefined), { what: 'the webhooks registered' })
    expect(harness.kit.requests.filter((r) => r.path === '/v4/webhooks' && r.method === 'POST').every((r) => r.grant === grant.id)).toBe(
      true,
    )

    // It works: the panel's Kit lists come through the bearer token.
    const tags = await harness.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    expect(tags.statusCode).toBe(200)
    expect(harness.kit.requests.filter((r) => r.grant === grant.id).length).toBeGreaterThanOrEqual(2)
  })

  it('keeps the tokens sealed at rest, bound to the community', async () => {
    const harness = await start()
    await connectWithKit(harness)
    const row = harness.app.sqlite
      .prepare(
        'SELECT kind, api_key_ciphertext AS access, refresh_token_ciphertext AS refresh, token_expires_at AS expiresAt FROM connections',
      )
      .get() as { kind: string; access: string; refresh: string; expiresAt: number }
    const grant = harness.kit.oauth!.grants[0]!
    expect(row.kind).toBe('oauth')
    for (const sealed of [row.access, row.refresh]) {
      expect(sealed).toMatch(/^v2\./)
      for (const token of issuedTokens(harness)) expect(sealed).not.toContain(token)
    }
    const keys = (harness.app.config as Config).encryptionKeys
    expect(decryptSecret(keys, 'c_alpha', row.access)).toBe(grant.accessToken)
    expect(decryptSecret(keys, 'c_alpha', row.refresh)).toBe(grant.refreshToken)
    expect(() => decryptSecret(keys, 'c_bravo', row.access)).toThrow()
    // expires_in as Kit gave it (7200 s by default), never assumed.
    expect(row.expiresAt).toBeGreaterThan(Date.now() + 7100_000)
    const states = harness.app.sqlite.prepare('SELECT * FROM oauth_states').all() as Record<string, unknown>[]
    expect(JSON.stringify(states)).not.toMatch(/kit_at_|kit_rt_|kit_code_/)
  })

  it('refuses a state used twice: the second callback stores nothing and asks Kit for nothing', async () => {
    const harness = await start()
    const back = await atKit(await startAuthorization(harness))
    expect((await callback(harness, back)).statusCode).toBe(200)
    const before = await connection(harness)
    const replay = await callback(harness, back)
    expect(replay.statusCode).toBe(400)
    expect(replay.body).toContain('{"type":"kit-oauth","ok":false,"code":"state_used"}')
    expect(replay.body).toContain('already used')
    expect(tokenRequests(harness, 'authorization_code')).toHaveLength(1)
    expect(await connection(harness)).toEqual(before)
  })

  it('refuses an expired state, an unknown one and none at all, storing nothing', async () => {
    const harness = await start()
    const back = await atKit(await startAuthorization(harness))
    harness.app.sqlite.prepare('UPDATE oauth_states SET expires_at = ?').run(Date.now() - 1)
    const expired = await callback(harness, back)
    expect(expired.statusCode).toBe(400)
    expect(expired.body).toContain('"code":"state_expired"')
    const forged = new URL(back)
    forged.searchParams.set('state', 'not-a-state-this-plugin-made')
    expect((await callback(harness, forged)).body).toContain('"code":"state_unknown"')
    const bare = new URL(back)
    bare.searchParams.delete('state')
    expect((await callback(harness, bare)).body).toContain('"code":"state_missing"')
    expect(tokenRequests(harness, 'authorization_code')).toHaveLength(0)
    expect(await connection(harness)).toMatchObject({ status: 'disconnected' })
  })

  it('binds a state to the community and the session that started it', async () => {
    const harness = await start()
    // Community A's owner starts; community B's owner starts too.
    const fromA = await atKit(await startAuthorization(harness, asA))
    const fromB = await atKit(await startAuthorization(harness, asB))
    // A newer start by the same session replaces its earlier state; another session's stays.
    const otherAdminOfA = sessionFor('c_alpha', { claims: { sub: 'u_other_admin' } })
    const replaced = await atKit(await startAuthorization(harness, asA))
    const otherSession = await atKit(await startAuthorization(harness, otherAdminOfA))
    expect((await callback(harness, fromA)).body).toContain('"code":"state_unknown"')

    // B's state connects B only, whoever's browser brings it back.
    expect((await callback(harness, fromB)).statusCode).toBe(200)
    expect(await connection(harness, asB)).toMatchObject({ status: 'connected', kind: 'oauth' })
    expect(await connection(harness, asA)).toMatchObject({ status: 'disconnected' })
    expect(harness.kit.oauth!.grants.map((g) => g.tenantName)).toEqual([expect.stringContaining('c_bravo')])

    // B's grant and A's are separate: different credentials, different tenants.
    expect((await callback(harness, replaced)).statusCode).toBe(200)
    expect((await callback(harness, otherSession)).statusCode).toBe(200)
    const rows = harness.app.sqlite.prepare('SELECT community_id AS c, credential_id AS id FROM connections ORDER BY c').all() as {
      c: string
      id: string
    }[]
    expect(rows.map((r) => r.c)).toEqual(['c_alpha', 'c_bravo'])
    expect(rows[0]!.id).not.toBe(rows[1]!.id)
    expect(rows.every((r) => r.id.startsWith('oauth_'))).toBe(true)
  })

  it('says so when the owner does not allow access at Kit, and stores nothing', async () => {
    const harness = await start()
    harness.kit.oauth!.setDecision('deny')
    const back = await atKit(await startAuthorization(harness))
    expect(back.searchParams.get('error')).toBe('access_denied')
    const page = await callback(harness, back)
    expect(page.statusCode).toBe(400)
    expect(page.body).toContain('"code":"access_denied"')
    expect(await connection(harness)).toMatchObject({ status: 'disconnected' })
  })

  it('replaces a rejected API key and resumes the deliveries held for it; a key replaces the grant again', async () => {
    const harness = await start()
    await harness.connect()
    expect(await connection(harness)).toMatchObject({ kind: 'api_key', key_hint: '…0001' })
    harness.kit.revokeKey(KEY)
    const held = await harness.send({ memberId: 'm_oauth', email: 'oauth@example.com' })
    await waitFor(() => (harness.delivery(held)?.reason === 'key_rejected' ? true : undefined), { what: 'the held delivery' })
    harness.kit.restoreKey(KEY)
    await connectWithKit(harness)
    expect(await connection(harness)).toMatchObject({ kind: 'oauth', key_hint: null, status: 'connected' })
    expect(await harness.settled(held)).toMatchObject({ status: 'succeeded' })
    const grant = harness.kit.oauth!.grants[0]!
    const member = harness.kit.requests.filter((r) => r.path === '/v4/subscribers' && r.method === 'POST')
    expect(member.at(-1)).toMatchObject({ grant: grant.id })
    // And back to a key: the grant is revoked at Kit.
    await harness.connect()
    expect(await connection(harness)).toMatchObject({ kind: 'api_key' })
    expect(grant.revoked).toBe(true)
  })

  it('revokes the grant at Kit on disconnect', async () => {
    const harness = await start()
    await connectWithKit(harness)
    const res = await harness.app.inject({ method: 'DELETE', url: '/api/v1/connection', headers: asA })
    expect(res.statusCode).toBe(204)
    expect(harness.kit.oauth!.grants[0]!.revoked).toBe(true)
    expect(await connection(harness)).toMatchObject({ status: 'disconnected' })
  })

  it('disconnects even when Kit cannot be asked to revoke', async () => {
    const harness = await start()
    await connectWithKit(harness)
    const saved = harness.kit.oauth!.grants[0]!
    harness.kit.oauth!.setAvailable(false)
    const res = await harness.app.inject({ method: 'DELETE', url: '/api/v1/connection', headers: asA })
    expect(res.statusCode).toBe(204)
    expect(saved.revoked).toBe(false)
    expect(harness.logs.join('\n')).toContain('could not be revoked')
    expect(harness.logs.join('\n')).not.toContain(saved.refreshToken)
    expect(await connection(harness)).toMatchObject({ status: 'disconnected' })
  })
})

describe('Connect with Kit: tokens', () => {
  it('refreshes on Kit’s 401 "The access token expired" and tries once more, with the new token', async () => {
    const harness = await start()
    await connectWithKit(harness)
    const grant = harness.kit.oauth!.grants[0]!
    const oldToken = grant.accessToken
    harness.kit.oauth!.expireAll()
    const from = harness.kit.requests.length
    const res = await harness.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    expect(res.statusCode, res.body).toBe(200)
    expect(tokenRequests(harness, 'refresh_token')).toEqual([expect.objectContaining({ status: 200 })])
    const calls = harness.kit.requests.slice(from).filter((r) => r.path === '/v4/tags')
    expect(calls.map((r) => [r.key === oldToken, r.status])).toEqual([
      [true, 401],
      [false, 200],
    ])
    expect(await connection(harness)).toMatchObject({ status: 'connected' })
    // The rotated refresh token is what is stored now.
    const row = await harness.app.storage.connections.get('c_alpha')
    expect(decryptSecret((harness.app.config as Config).encryptionKeys, 'c_alpha', row!.refreshTokenCiphertext!)).toBe(grant.refreshToken)
  })

  it('refreshes ahead once less than half of expires_in remains, and never sends the old token again', async () => {
    const harness = await start({ expiresInS: 2 })
    await connectWithKit(harness)
    const oldToken = harness.kit.oauth!.grants[0]!.accessToken
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const from = harness.kit.requests.length
    await Promise.all([1, 2, 3].map(() => harness.app.inject({ method: 'GET', url: '/api/v1/kit/tags?refresh=1', headers: asA })))
    expect(tokenRequests(harness, 'refresh_token')).toHaveLength(1)
    const after = harness.kit.requests.slice(from).filter((r) => r.path.startsWith('/v4/tags'))
    expect(after.length).toBeGreaterThan(0)
    expect(after.every((r) => r.key !== oldToken && r.status === 200)).toBe(true)
  })

  it('turns the connection invalid when Kit refuses the refresh, holds deliveries instead of failing them, and tells the platform', async () => {
    const receiver = await startPlatformReceiver()
    const harness = await start({}, { platformEvents: { url: receiver.url, secret: receiver.secret } })
    await connectWithKit(harness)
    const grant = harness.kit.oauth!.grants[0]!
    harness.kit.oauth!.expireAll()
    // The owner removed the app in Kit: the refresh token no longer works.
    grant.refreshToken = 'kit_rt_no_longer_valid'
    const id = await harness.send({ memberId: 'm_held', email: 'held@example.com' })
    await waitFor(async () => (await connection(harness)).status === 'invalid', { what: 'the connection turned invalid' })
    expect(tokenRequests(harness, 'refresh_token')).toEqual([expect.objectContaining({ status: 400, error: 'invalid_grant' })])
    const delivery = await waitFor(() => (harness.delivery(id)?.reason ? harness.delivery(id) : undefined), { what: 'the held delivery' })
    expect(delivery.status).not.toBe('failed')
    expect(harness.logs.join('\n')).toContain('kit refused to renew the oauth token')
    const test = await harness.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    expect(test.json()).toMatchObject({ error: { code: 'connection_invalid' } })
    expect(test.json().error.message).toMatch(/Connect with Kit/)
    await waitFor(() => receiver.accepted().find((e) => e.body.type === 'kit.connection.invalid'), { what: 'kit.connection.invalid' })
    await receiver.close()
  })

  it('turns the connection invalid when Kit refuses a token it did not call expired (a revoked grant)', async () => {
    const harness = await start()
    await connectWithKit(harness)
    harness.kit.oauth!.revokeAll()
    const res = await harness.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    expect(res.json()).toMatchObject({ error: { code: 'connection_invalid' } })
    expect(tokenRequests(harness, 'refresh_token')).toHaveLength(0)
    expect(await connection(harness)).toMatchObject({ status: 'invalid', kind: 'oauth' })
  })

  it('counts an OAuth connection against the OAuth budget, a key against the key budget', async () => {
    const harness = await start({}, { kitRateLimit: 7, kitOAuthRateLimit: 33 })
    await connectWithKit(harness)
    await harness.connect(asB, KEY)
    const ids = harness.app.sqlite.prepare('SELECT community_id AS c, credential_id AS id FROM connections ORDER BY c').all() as {
      c: string
      id: string
    }[]
    expect(harness.app.kitBudget.rateOf(ids[0]!.id).limit).toBe(33)
    expect(harness.app.kitBudget.rateOf(ids[1]!.id).limit).toBe(7)
  })
})

describe('Connect with Kit: Kit down while a refresh is due', () => {
  it('keeps sending the current token while it lives, without asking Kit for a refresh on every request', async () => {
    const harness = await start({ expiresInS: 4 })
    await connectWithKit(harness)
    const token = harness.kit.oauth!.grants[0]!.accessToken
    // Half its life over, and Kit's token endpoint is down.
    await new Promise((resolve) => setTimeout(resolve, 2100))
    harness.kit.oauth!.setAvailable(false)
    const res = await harness.app.inject({ method: 'GET', url: '/api/v1/kit/tags?refresh=1', headers: asA })
    expect(res.statusCode, res.body).toBe(200)
    await harness.app.inject({ method: 'GET', url: '/api/v1/kit/tags?refresh=1', headers: asA })
    expect(tokenRequests(harness, 'refresh_token')).toEqual([expect.objectContaining({ status: 503 })])
    expect(harness.kit.requests.filter((r) => r.path === '/v4/tags').every((r) => r.key === token)).toBe(true)
    expect(await connection(harness)).toMatchObject({ status: 'connected' })
    expect(harness.logs.join('\n')).toContain('could not be refreshed')
  })
})

describe("Connect with Kit: an install begun in Kit's App Store", () => {
  const installPage = (harness: PipelineHarness, redirect: string | null) =>
    harness.app.inject({ method: 'GET', url: `/oauth/kit/install${redirect === null ? '' : `?redirect=${encodeURIComponent(redirect)}`}` })
  const codeOf = (html: string) => /<p class="code">([A-Z0-9-]+)<\/p>/.exec(html)?.[1] as string

  it('shows a code to finish in App Station, then the authorization ends on Kit’s page', async () => {
    const harness = await start()
    const kitPage = `${harness.kit.url}/apps/42/installed`
    const install = await installPage(harness, kitPage)
    expect(install.statusCode).toBe(200)
    expect(install.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    const code = codeOf(install.body)
    expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/)
    expect(install.body).toContain('Settings › Integrations › Kit')

    // In the panel: the code, typed loosely, starts the authorization.
    const authorizeUrl = await startAuthorization(harness, asA, { install_code: code.toLowerCase().replace('-', ' ') })
    const page = await callback(harness, await atKit(authorizeUrl))
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain(`var returnTo = ${JSON.stringify(kitPage)}`)
    expect(await connection(harness)).toMatchObject({ status: 'connected', kind: 'oauth' })

    // A code works once.
    const again = await harness.app.inject({
      method: 'POST',
      url: '/api/v1/connection/oauth/start',
      headers: asA,
      payload: { install_code: code },
    })
    expect(again.statusCode).toBe(422)
    expect(again.json()).toMatchObject({ error: { code: 'install_code_unknown' } })
  })

  it("refuses a redirect that does not lead to Kit's app, and stores nothing", async () => {
    const harness = await start()
    for (const redirect of [null, 'https://evil.example/apps/42', 'javascript:alert(1)', `http://user:pw@127.0.0.1/apps`]) {
      const res = await installPage(harness, redirect)
      expect(res.statusCode, String(redirect)).toBe(400)
      expect(res.body).toContain('not valid')
    }
    expect(harness.app.sqlite.prepare('SELECT count(*) AS n FROM oauth_installs').get()).toEqual({ n: 0 })
  })
})
