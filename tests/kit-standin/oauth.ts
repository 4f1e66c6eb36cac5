/**
 * Kit's OAuth as the stand-in plays it (Kit App Store apps): a consent page that approves at once
 * for the demo, the token endpoint (an authorization code with its PKCE verifier, or a refresh
 * token, rotated on every use), revocation, and the bearer tokens the API then accepts.
 *
 * As strict as Kit's documents and its OAuth server allow, never more lenient: the client's id and
 * secret are checked on every token request, the redirect URI must be registered and the same as
 * at authorization, PKCE is required and must be S256, a code is used once within 10 minutes, a
 * refresh token stops working once used (and the access token it replaced with it), and an expired
 * token is answered 401 "The access token expired".
 */
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export interface StandinOAuthOptions {
  clientId: string
  clientSecret: string
  /** Redirect URIs the app registered with Kit (more with `registerRedirectUri`). */
  redirectUris?: string[]
  /** The account (by API key) the consent page approves for; default the stand-in's first key. */
  account?: string
  /** Access tokens' life in seconds, as `expires_in` says; default 7200. */
  expiresInS?: number
  /** Requests per window for each grant; default Kit's 600 per 60 s. */
  rateLimit?: { limit: number; windowMs: number }
}

/** One authorization: its current tokens rotate, its budget and account stay. */
export interface StandinGrant {
  id: number
  account: string
  tenantName: string | null
  accessToken: string
  refreshToken: string
  accessExpiresAt: number
  revoked: boolean
  /** Receipt times of the API requests counted against the grant's budget. */
  requestTimes: number[]
}

export interface StandinTokenRequest {
  at: number
  grantType: string
  status: number
  /** OAuth's error code when refused. */
  error: string | null
}

interface PendingCode {
  clientId: string
  redirectUri: string
  challenge: string
  account: string
  tenantName: string | null
  expiresAt: number
  used: boolean
  /** The grant issued for it, revoked if the code is presented again. */
  grant: StandinGrant | null
}

export interface OAuthAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
const CODE_TTL_MS = 10 * 60_000
const INVALID_GRANT =
  'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.'
const INVALID_CLIENT =
  'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.'

const token = (prefix: string) => `${prefix}${randomBytes(24).toString('base64url')}`
const s256 = (verifier: string) => createHash('sha256').update(verifier, 'ascii').digest('base64url')
const json = (status: number, body: unknown): OAuthAnswer => ({ status, headers: JSON_HEADERS, body: JSON.stringify(body) })
const oauthError = (status: number, error: string, description: string) => json(status, { error, error_description: description })

/** What a bearer token stands for on an API request. */
export type BearerCheck = { grant: StandinGrant } | { refused: 'The access token is invalid' | 'The access token expired' }

export class StandinOAuth {
  readonly tokenRequests: StandinTokenRequest[] = []
  readonly grants: StandinGrant[] = []
  private readonly codes = new Map<string, PendingCode>()
  private readonly redirectUris: Set<string>
  private expiresInS: number
  private decision: 'approve' | 'deny' = 'approve'
  private available = true
  private lastGrantId = 0
  readonly rateLimit: { limit: number; windowMs: number }

  constructor(
    private readonly options: StandinOAuthOptions,
    private readonly defaultAccount: () => string,
  ) {
    this.redirectUris = new Set(options.redirectUris ?? [])
    this.expiresInS = options.expiresInS ?? 7200
    this.rateLimit = options.rateLimit ?? { limit: 600, windowMs: 60_000 }
  }

  registerRedirectUri(uri: string): void {
    this.redirectUris.add(uri)
  }

  setExpiry(seconds: number): void {
    this.expiresInS = seconds
  }

  /** What the consent page does with the next authorizations: approve (the demo), or the owner says no. */
  setDecision(decision: 'approve' | 'deny'): void {
    this.decision = decision
  }

  /** false: the token and revoke endpoints answer 503 (Kit's OAuth server is down) until set back. */
  setAvailable(available: boolean): void {
    this.available = available
  }

  /** The owner removes the app in Kit: every grant stops working. */
  revokeAll(): void {
    for (const grant of this.grants) grant.revoked = true
  }

  /** Every current access token expires now (a refresh is then due). */
  expireAll(now = Date.now()): void {
    for (const grant of this.grants) grant.accessExpiresAt = Math.min(grant.accessExpiresAt, now)
  }

  checkBearer(value: string, now: number): BearerCheck {
    const grant = this.grants.find((g) => g.accessToken === value)
    if (!grant || grant.revoked) return { refused: 'The access token is invalid' }
    if (now >= grant.accessExpiresAt) return { refused: 'The access token expired' }
    return { grant }
  }

  /** Counts a request against the grant's own budget (at receipt); false past it. */
  admit(grant: StandinGrant, now: number): boolean {
    grant.requestTimes = grant.requestTimes.filter((at) => at > now - this.rateLimit.windowMs)
    if (grant.requestTimes.length >= this.rateLimit.limit) return false
    grant.requestTimes.push(now)
    return true
  }

  /** `GET /v4/oauth/authorize`: approves at once (the demo) and sends the browser back with a code. */
  authorize(query: URLSearchParams, now: number): OAuthAnswer {
    const clientId = query.get('client_id')
    const redirectUri = query.get('redirect_uri') ?? ''
    if (clientId !== this.options.clientId) return oauthError(400, 'invalid_client', INVALID_CLIENT)
    // An unregistered redirect is never followed: the error stays on Kit's page.
    if (!this.redirectUris.has(redirectUri)) {
      return oauthError(400, 'invalid_redirect_uri', 'The requested redirect uri is malformed or doesn’t match client redirect URI.')
    }
    const back = (params: Record<string, string>): OAuthAnswer => {
      const url = new URL(redirectUri)
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
      const state = query.get('state')
      if (state !== null) url.searchParams.set('state', state)
      return { status: 302, headers: { location: url.toString(), 'cache-control': 'no-store' }, body: '' }
    }
    if (query.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' })
    const challenge = query.get('code_challenge') ?? ''
    if (query.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43,128}$/.test(challenge)) {
      return back({ error: 'invalid_request', error_description: 'PKCE with code_challenge_method S256 is required.' })
    }
    if (this.decision === 'deny') return back({ error: 'access_denied' })
    const code = token('kit_code_')
    this.codes.set(code, {
      clientId,
      redirectUri,
      challenge,
      account: this.options.account ?? this.defaultAccount(),
      tenantName: query.get('tenant_name'),
      expiresAt: now + CODE_TTL_MS,
      used: false,
      grant: null,
    })
    return back({ code })
  }

  /** `POST /v4/oauth/token`. */
  token(req: IncomingMessage, rawBody: string, now: number): OAuthAnswer {
    const fields = readFields(req, rawBody)
    const grantType = fields.get('grant_type') ?? ''
    const answer = this.available
      ? this.grantFor(req, fields, grantType, now)
      : oauthError(503, 'temporarily_unavailable', 'Try again later.')
    const error = answer.status === 200 ? null : ((JSON.parse(answer.body) as { error?: string }).error ?? null)
    this.tokenRequests.push({ at: now, grantType, status: answer.status, error })
    return answer
  }

  /** `POST /v4/oauth/revoke` (RFC 7009): 200 whatever the token; a known one ends its grant. */
  revoke(req: IncomingMessage, rawBody: string): OAuthAnswer {
    if (!this.available) return oauthError(503, 'temporarily_unavailable', 'Try again later.')
    const fields = readFields(req, rawBody)
    if (!this.clientAuthenticated(req, fields)) return oauthError(401, 'invalid_client', INVALID_CLIENT)
    const value = fields.get('token')
    const grant = this.grants.find((g) => g.accessToken === value || g.refreshToken === value)
    if (grant) grant.revoked = true
    return json(200, {})
  }

  private grantFor(req: IncomingMessage, fields: URLSearchParams, grantType: string, now: number): OAuthAnswer {
    if (!this.clientAuthenticated(req, fields)) return oauthError(401, 'invalid_client', INVALID_CLIENT)
    if (grantType === 'authorization_code') return this.exchange(fields, now)
    if (grantType === 'refresh_token') return this.refresh(fields, now)
    return oauthError(400, 'unsupported_grant_type', 'The authorization grant type is not supported by the authorization server.')
  }

  private exchange(fields: URLSearchParams, now: number): OAuthAnswer {
    const pending = this.codes.get(fields.get('code') ?? '')
    if (!pending || pending.clientId !== this.options.clientId || pending.expiresAt <= now) {
      return oauthError(400, 'invalid_grant', INVALID_GRANT)
    }
    if (pending.used) {
      // A code presented twice: whatever it granted is revoked (RFC 6749 §4.1.2).
      if (pending.grant) pending.grant.revoked = true
      return oauthError(400, 'invalid_grant', INVALID_GRANT)
    }
    if (fields.get('redirect_uri') !== pending.redirectUri) return oauthError(400, 'invalid_grant', INVALID_GRANT)
    const verifier = fields.get('code_verifier') ?? ''
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || s256(verifier) !== pending.challenge) {
      return oauthError(400, 'invalid_grant', INVALID_GRANT)
    }
    pending.used = true
    const grant: StandinGrant = {
      id: ++this.lastGrantId,
      account: pending.account,
      tenantName: pending.tenantName,
      accessToken: token('kit_at_'),
      refreshToken: token('kit_rt_'),
      accessExpiresAt: now + this.expiresInS * 1000,
      revoked: false,
      requestTimes: [],
    }
    pending.grant = grant
    this.grants.push(grant)
    return this.tokensOf(grant, now)
  }

  private refresh(fields: URLSearchParams, now: number): OAuthAnswer {
    const presented = fields.get('refresh_token')
    const grant = this.grants.find((g) => g.refreshToken === presented)
    if (!presented || !grant || grant.revoked) return oauthError(400, 'invalid_grant', INVALID_GRANT)
    // Rotation: the old refresh token and the access token issued with it stop working now.
    grant.accessToken = token('kit_at_')
    grant.refreshToken = token('kit_rt_')
    grant.accessExpiresAt = now + this.expiresInS * 1000
    return this.tokensOf(grant, now)
  }

  private tokensOf(grant: StandinGrant, now: number): OAuthAnswer {
    return json(200, {
      access_token: grant.accessToken,
      token_type: 'Bearer',
      expires_in: this.expiresInS,
      refresh_token: grant.refreshToken,
      scope: 'public',
      created_at: Math.floor(now / 1000),
    })
  }

  /** The app's id and secret, in the body or as HTTP Basic. */
  private clientAuthenticated(req: IncomingMessage, fields: URLSearchParams): boolean {
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    let id = fields.get('client_id')
    let secret = fields.get('client_secret')
    if (basic?.[1]) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      id = decodeURIComponent(decoded.slice(0, colon))
      secret = decodeURIComponent(decoded.slice(colon + 1))
    }
    return id === this.options.clientId && secret === this.options.clientSecret
  }
}

/** A token request's fields: form-encoded (OAuth's own format) or JSON. */
function readFields(req: IncomingMessage, rawBody: string): URLSearchParams {
  const type = req.headers['content-type'] ?? ''
  if (/json/i.test(type)) {
    try {
      const parsed: unknown = JSON.parse(rawBody)
      if (typeof parsed === 'object' && parsed !== null) {
        return new URLSearchParams(
          Object.entries(parsed).flatMap(([key, value]) =>
            typeof value === 'string' || typeof value === 'number' ? [[key, String(value)]] : [],
          ),
        )
      }
    } catch {
      return new URLSearchParams()
    }
    return new URLSearchParams()
  }
  return new URLSearchParams(rawBody)
}
