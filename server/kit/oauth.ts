/**
 * Kit's OAuth endpoints, for *Connect with Kit*: the consent page's address, the token endpoint
 * (an authorization code with its PKCE verifier, or a refresh token) and revocation. The client
 * secret and the tokens travel only in request bodies to KIT_API_URL, never in a URL, and never
 * in an error message; redirects are not followed.
 */
import { createHash, randomBytes } from 'node:crypto'
import { ofetch } from 'ofetch'

export interface KitOAuthOptions {
  /** Kit's base URL without `/v4`. */
  baseUrl: string
  clientId: string
  clientSecret: string
  /** Where Kit sends the owner back: PUBLIC_URL/oauth/kit/callback, exactly as registered with the app. */
  redirectUri: string
  /** Per request; default 10000. */
  timeoutMs?: number
}

/** What Kit's token endpoint granted. */
export interface TokenGrant {
  accessToken: string
  /** Null when Kit's answer named none (a refresh then keeps the one it had). */
  refreshToken: string | null
  /** The access token's life as Kit gave it; null when Kit did not say (then only a 401 "expired" refreshes it). */
  expiresInS: number | null
}

/**
 * Why the token endpoint gave no tokens: `invalid_grant` (the code or refresh token is no good:
 * used, expired or revoked — for a refresh, the owner must connect again), `rejected` (Kit refused
 * the request otherwise: the app's client id or secret, say), `unavailable` (no answer, 429, 5xx).
 */
export type OAuthFailure = 'invalid_grant' | 'rejected' | 'unavailable'

export class KitOAuthError extends Error {
  override readonly name = 'KitOAuthError'

  constructor(
    readonly failure: OAuthFailure,
    readonly status: number | null,
    /** OAuth's error code from Kit's answer (`invalid_grant`, `invalid_client`, …), when it gave one. */
    readonly code: string | null,
    message: string,
  ) {
    super(message)
  }
}

/** A PKCE pair: the verifier stays on the server, the S256 challenge goes to Kit's consent page. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier, 'ascii').digest('base64url') }
}

const DEFAULT_TIMEOUT_MS = 10_000

export class KitOAuthClient {
  readonly #options: KitOAuthOptions

  constructor(options: KitOAuthOptions) {
    this.#options = options
  }

  get redirectUri(): string {
    return this.#options.redirectUri
  }

  /** Kit's consent page for one authorization. */
  authorizeUrl(input: { state: string; codeChallenge: string; tenantName: string }): string {
    const url = new URL(`${this.#base()}/v4/oauth/authorize`)
    url.search = new URLSearchParams({
      client_id: this.#options.clientId,
      response_type: 'code',
      redirect_uri: this.#options.redirectUri,
      state: input.state,
      code_challenge: input.codeChallenge,
      code_challenge_method: 'S256',
      tenant_name: input.tenantName,
    }).toString()
    return url.toString()
  }

  exchangeCode(code: string, verifier: string): Promise<TokenGrant> {
    return this.#token({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: this.#options.redirectUri })
  }

  /** A new access token and (Kit rotates them) a new refresh token; the old refresh token stops working. */
  refresh(refreshToken: string): Promise<TokenGrant> {
    return this.#token({ grant_type: 'refresh_token', refresh_token: refreshToken })
  }

  /** Revokes a token (and with it the grant) at Kit. Throws when Kit could not be asked or refused. */
  async revoke(token: string): Promise<void> {
    const { status } = await this.#post('/v4/oauth/revoke', { token })
    if (status < 200 || status >= 300)
      throw new KitOAuthError(status >= 500 ? 'unavailable' : 'rejected', status, null, `Kit answered ${status}`)
  }

  #base(): string {
    return this.#options.baseUrl.replace(/\/+$/, '')
  }

  async #token(fields: Record<string, string>): Promise<TokenGrant> {
    const { status, text } = await this.#post('/v4/oauth/token', fields)
    const body = parseObject(text)
    if (status >= 200 && status < 300 && body) return grantOf(body, status)
    const code = typeof body?.error === 'string' ? body.error : null
    const failure: OAuthFailure = status === 429 || status >= 500 ? 'unavailable' : code === 'invalid_grant' ? 'invalid_grant' : 'rejected'
    const said = typeof body?.error_description === 'string' ? `: ${body.error_description.slice(0, 200)}` : ''
    throw new KitOAuthError(failure, status, code, `Kit's token endpoint answered ${status}${code ? ` ${code}` : ''}${said}`)
  }

  /** A form POST with the app's client credentials; never follows a redirect. */
  async #post(path: string, fields: Record<string, string>): Promise<{ status: number; text: string }> {
    const body = new URLSearchParams({ ...fields, client_id: this.#options.clientId, client_secret: this.#options.clientSecret })
    try {
      const response = await ofetch.raw(`${this.#base()}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body.toString(),
        responseType: 'text',
        ignoreResponseError: true,
        retry: 0,
        redirect: 'manual',
        timeout: this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      })
      return { status: response.status, text: typeof response._data === 'string' ? response._data : '' }
    } catch {
      throw new KitOAuthError('unavailable', null, null, 'Kit could not be reached')
    }
  }
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

function grantOf(body: Record<string, unknown>, status: number): TokenGrant {
  const { access_token: access, refresh_token: refresh, expires_in: expiresIn } = body
  if (typeof access !== 'string' || access === '') {
    throw new KitOAuthError('unavailable', status, null, `Kit's token endpoint answered ${status} without an access token`)
  }
  const seconds = typeof expiresIn === 'string' && /^\d+$/.test(expiresIn) ? Number(expiresIn) : expiresIn
  return {
    accessToken: access,
    refreshToken: typeof refresh === 'string' && refresh !== '' ? refresh : null,
    expiresInS: typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? seconds : null,
  }
}
