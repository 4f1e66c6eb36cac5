/**
 * The stand-in's Kit app, over HTTP, as strict as Kit: the consent page checks the client, the
 * redirect and PKCE; a code is used once with its verifier; refresh tokens rotate; bearer tokens
 * have their own budget and expire with Kit's words; revocation ends a grant.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startKitStandin, type KitStandin, type StandinOAuthOptions } from './kit-standin/server.ts'

const REDIRECT = 'https://plugin.example/oauth/kit/callback'
const CLIENT = { clientId: 'client_1', clientSecret: 'secret_1' }

let standin: KitStandin

async function start(oauth: Partial<StandinOAuthOptions> = {}): Promise<void> {
  standin = await startKitStandin({ apiKeys: ['key_a'], oauth: { ...CLIENT, redirectUris: [REDIRECT], ...oauth } })
}

beforeEach(() => start())
afterEach(() => standin.close())

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

function authorizeUrl(params: Record<string, string | null>): string {
  const url = new URL(`${standin.url}/v4/oauth/authorize`)
  const all: Record<string, string | null> = {
    client_id: CLIENT.clientId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    state: 'st_1',
    code_challenge_method: 'S256',
    tenant_name: 'App Station community c_1',
    ...params,
  }
  for (const [name, value] of Object.entries(all)) if (value !== null) url.searchParams.set(name, value)
  return url.toString()
}

async function authorize(params: Record<string, string | null>): Promise<{ status: number; location: URL | null; body: string }> {
  const res = await fetch(authorizeUrl(params), { redirect: 'manual' })
  const location = res.headers.get('location')
  return { status: res.status, location: location ? new URL(location) : null, body: await res.text() }
}

async function token(fields: Record<string, string>, client = CLIENT): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${standin.url}/v4/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, ...fields }).toString(),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

/** An authorization approved at once, exchanged for tokens. */
async function grant(): Promise<{ access: string; refresh: string }> {
  const { verifier, challenge } = pkce()
  const { location } = await authorize({ code_challenge: challenge })
  const code = location?.searchParams.get('code') as string
  const { status, body } = await token({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT })
  expect(status).toBe(200)
  return { access: body.access_token as string, refresh: body.refresh_token as string }
}

const api = (path: string, bearer: string) => fetch(`${standin.url}/v4${path}`, { headers: { authorization: `Bearer ${bearer}` } })

describe('the consent page', () => {
  it('approves at once, sending the browser back with a code and the state', async () => {
    const { challenge } = pkce()
    const { status, location } = await authorize({ code_challenge: challenge })
    expect(status).toBe(302)
    expect(`${location!.origin}${location!.pathname}`).toBe(REDIRECT)
    expect(location!.searchParams.get('state')).toBe('st_1')
    expect(location!.searchParams.get('code')).toMatch(/^kit_code_/)
  })

  it('refuses an unknown client and an unregistered redirect without redirecting', async () => {
    const { challenge } = pkce()
    expect(await authorize({ code_challenge: challenge, client_id: 'other' })).toMatchObject({ status: 400, location: null })
    const elsewhere = await authorize({ code_challenge: challenge, redirect_uri: 'https://attacker.example/cb' })
    expect(elsewhere).toMatchObject({ status: 400, location: null })
  })

  it('requires PKCE with S256', async () => {
    const { challenge } = pkce()
    const variants: Record<string, string | null>[] = [
      { code_challenge: null },
      { code_challenge: challenge, code_challenge_method: 'plain' },
    ]
    for (const params of variants) {
      const { location } = await authorize(params)
      expect(location?.searchParams.get('error')).toBe('invalid_request')
      expect(location?.searchParams.has('code')).toBe(false)
    }
  })

  it('answers access_denied when the owner says no', async () => {
    standin.oauth!.setDecision('deny')
    const { location } = await authorize({ code_challenge: pkce().challenge })
    expect(location?.searchParams.get('error')).toBe('access_denied')
    expect(location?.searchParams.get('state')).toBe('st_1')
  })
})

describe('the token endpoint', () => {
  it('exchanges a code once, with its verifier, the same redirect and the client’s secret', async () => {
    const { verifier, challenge } = pkce()
    const code = (await authorize({ code_challenge: challenge })).location!.searchParams.get('code') as string
    const exchange = (fields: Record<string, string>, client = CLIENT) =>
      token({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, ...fields }, client)
    expect(await exchange({}, { ...CLIENT, clientSecret: 'wrong' })).toMatchObject({ status: 401, body: { error: 'invalid_client' } })
    expect(await exchange({ code_verifier: pkce().verifier })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(await exchange({ redirect_uri: 'https://plugin.example/other' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    })
    const ok = await exchange({})
    expect(ok).toMatchObject({ status: 200, body: { token_type: 'Bearer', expires_in: 7200 } })
    expect(standin.oauth!.grants[0]!.tenantName).toBe('App Station community c_1')
    // Used twice: refused, and what it granted is revoked.
    expect(await exchange({})).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect((await api('/account', ok.body.access_token as string)).status).toBe(401)
  })

  it('rotates the refresh token: the old one and the old access token stop working', async () => {
    const first = await grant()
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: first.refresh })
    expect(refreshed.status).toBe(200)
    expect(refreshed.body.refresh_token).not.toBe(first.refresh)
    expect(await token({ grant_type: 'refresh_token', refresh_token: first.refresh })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    })
    const old = await api('/account', first.access)
    expect(old.status).toBe(401)
    expect(await old.json()).toEqual({ errors: ['The access token is invalid'] })
    expect((await api('/account', refreshed.body.access_token as string)).status).toBe(200)
    expect(standin.oauth!.tokenRequests.map((r) => [r.grantType, r.status])).toEqual([
      ['authorization_code', 200],
      ['refresh_token', 200],
      ['refresh_token', 400],
    ])
  })

  it('gives expires_in as configured, and answers an expired token with Kit’s words', async () => {
    standin.oauth!.setExpiry(1)
    const { access } = await grant()
    expect((await api('/account', access)).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 1050))
    const expired = await api('/account', access)
    expect(expired.status).toBe(401)
    expect(await expired.json()).toEqual({ errors: ['The access token expired'] })
  })

  it('revokes a grant by either of its tokens', async () => {
    const { access, refresh } = await grant()
    const res = await fetch(`${standin.url}/v4/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...{ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret }, token: refresh }).toString(),
    })
    expect(res.status).toBe(200)
    expect((await api('/account', access)).status).toBe(401)
    expect(await token({ grant_type: 'refresh_token', refresh_token: refresh })).toMatchObject({ status: 400 })
  })
})

describe('bearer tokens on the API', () => {
  it('act on the approving account, with a budget of their own (600 per 60 s by default)', async () => {
    await standin.close()
    await start({ rateLimit: { limit: 3, windowMs: 60_000 } })
    const { access } = await grant()
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await api('/tags', access)).status)
    expect(statuses).toEqual([200, 200, 200, 429])
    // The API key of the same account keeps its own budget.
    const byKey = await fetch(`${standin.url}/v4/tags`, { headers: { 'x-kit-api-key': 'key_a' } })
    expect(byKey.status).toBe(200)
    expect(standin.oauth!.rateLimit).toEqual({ limit: 3, windowMs: 60_000 })
  })

  it('defaults to Kit’s OAuth budget', () => {
    expect(standin.oauth!.rateLimit).toEqual({ limit: 600, windowMs: 60_000 })
  })
})
