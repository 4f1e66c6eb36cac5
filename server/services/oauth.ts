/**
 * *Connect with Kit* (OAuth authorization code with PKCE): the panel starts an authorization, Kit
 * sends the owner back to the callback, the grant is saved as the community's connection.
 *
 * The `state` is random, used once, lives 10 minutes, and is stored only as its SHA-256, bound to
 * the community and the session (the token's `sub`) that started it; a newer start by the same
 * session replaces it. The PKCE verifier is sealed beside it and never leaves the server. Tokens
 * never reach a browser: the callback page learns only whether it worked.
 *
 * Installs that start in Kit's App Store arrive at the install page with Kit's `redirect`. The
 * plugin cannot tell there which App Station community they are for (its only sign-in is App
 * Station's session inside the panel), so the page shows a short code, used once within 30
 * minutes, that the owner enters in the Kit panel in App Station; the authorization then runs as
 * above and ends on Kit's page.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { OAuthStart } from '#shared/api.ts'
import type { OAuthFailureCode } from '#shared/oauth.ts'
import { isLoopbackHost } from '../config-schema.ts'
import type { OAuthStateRepository } from '../core/storage.ts'
import { KitOAuthError, pkcePair, type KitOAuthClient, type TokenGrant } from '../kit/oauth.ts'
import { decryptSecret, encryptSecret, type KeyRing } from '../lib/crypto.ts'
import { AppError } from '../lib/errors.ts'
import type { ConnectionService } from './connections.ts'

export const STATE_TTL_MS = 10 * 60_000
export const INSTALL_TTL_MS = 30 * 60_000
/** Used and expired rows are kept this long, so a late or repeated callback is told what happened. */
const KEEP_MS = 24 * 60 * 60_000
/** The install code's letters: no 0/O, 1/I/L, so it can be read aloud and typed. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'
const CODE_LENGTH = 8

export type CallbackOutcome = { ok: true; returnTo: string | null } | { ok: false; code: OAuthFailureCode; returnTo: string | null }

export interface CallbackQuery {
  code?: string
  state?: string
  error?: string
}

export interface OAuthServiceDeps {
  states: OAuthStateRepository
  connections: ConnectionService
  oauth: KitOAuthClient
  keys: KeyRing
  /** KIT_API_URL: the install's `redirect` must lead to Kit's app on the matching host. */
  kitApiUrl: string
  log: FastifyBaseLogger
  now?: () => number
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex')

/** The tenant Kit keeps this community's grant under: one Kit account may serve several communities. */
export const tenantNameFor = (communityId: string) => `App Station community ${communityId}`

/** An install code as typed: letters and digits only, upper case. */
const normalizedCode = (code: string) => code.toUpperCase().replace(/[^A-Z0-9]/g, '')

/**
 * The host Kit's App Store sends owners back to: Kit's app beside its API (api.kit.com →
 * app.kit.com), or the API's own host when it has no `api.` (a stand-in on this machine).
 */
export function kitAppHost(kitApiUrl: string): string {
  const { hostname } = new URL(kitApiUrl)
  return hostname.startsWith('api.') ? `app.${hostname.slice('api.'.length)}` : hostname
}

/** Kit's page to return to at the end of an install, or null when `redirect` does not lead to Kit's app. */
export function kitReturnUrl(redirect: string | undefined, kitApiUrl: string): string | null {
  if (redirect === undefined || redirect.length > 2000) return null
  let url: URL
  try {
    url = new URL(redirect)
  } catch {
    return null
  }
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
  if (!secure || url.username !== '' || url.password !== '' || url.hostname !== kitAppHost(kitApiUrl)) return null
  return url.toString()
}

export class OAuthService {
  private readonly now: () => number

  constructor(private readonly d: OAuthServiceDeps) {
    this.now = d.now ?? Date.now
  }

  /** Kit's consent page for a new authorization by this session, for this community. */
  async start(session: { communityId: string; userId: string }, installCode?: string): Promise<OAuthStart> {
    const now = this.now()
    await this.d.states.purge(now - KEEP_MS)
    let returnTo: string | null = null
    if (installCode !== undefined) {
      const install = await this.d.states.useInstall(sha256(normalizedCode(installCode)), now)
      if (!install) {
        throw new AppError(
          422,
          'install_code_unknown',
          'That code is unknown, used or expired. Open Kit’s App Store again to get a new one.',
        )
      }
      returnTo = install.returnTo
    }
    const state = randomBytes(32).toString('base64url')
    const { verifier, challenge } = pkcePair()
    await this.d.states.start({
      stateHash: sha256(state),
      communityId: session.communityId,
      sessionSub: session.userId,
      verifierCiphertext: encryptSecret(this.d.keys, session.communityId, verifier),
      returnTo,
      createdAt: now,
      expiresAt: now + STATE_TTL_MS,
      usedAt: null,
    })
    const url = this.d.oauth.authorizeUrl({ state, codeChallenge: challenge, tenantName: tenantNameFor(session.communityId) })
    return { authorize_url: url }
  }

  /** Kit sent the owner back: checks the state, exchanges the code, saves the connection. */
  async callback(query: CallbackQuery): Promise<CallbackOutcome> {
    if (!query.state) return { ok: false, code: 'state_missing', returnTo: null }
    const used = await this.d.states.use(sha256(query.state), this.now())
    if ('refused' in used) return { ok: false, code: `state_${used.refused}`, returnTo: null }
    const { communityId, returnTo } = used.state
    if (query.error !== undefined) return { ok: false, code: query.error === 'access_denied' ? 'access_denied' : 'kit_refused', returnTo }
    if (!query.code) return { ok: false, code: 'code_missing', returnTo }
    let grant: TokenGrant
    try {
      grant = await this.d.oauth.exchangeCode(query.code, decryptSecret(this.d.keys, communityId, used.state.verifierCiphertext))
    } catch (err) {
      if (!(err instanceof KitOAuthError)) throw err
      this.d.log.warn({ communityId, status: err.status, code: err.code ?? err.failure }, 'kit did not exchange the authorization code')
      return { ok: false, code: err.failure === 'unavailable' ? 'kit_unreachable' : 'kit_refused', returnTo }
    }
    try {
      await this.d.connections.connectOAuth(communityId, grant)
    } catch (err) {
      if (!(err instanceof AppError)) throw err
      this.d.log.warn({ communityId, code: err.code }, 'kit did not accept the new connection')
      return { ok: false, code: err.code === 'kit_rejected_token' ? 'kit_refused' : 'kit_unreachable', returnTo }
    }
    return { ok: true, returnTo }
  }

  /**
   * An install begun in Kit's App Store: remembers Kit's page to return to under a new code for the
   * owner to enter in the panel. Refuses a `redirect` that does not lead to Kit's app.
   */
  async install(redirect: string | undefined): Promise<{ code: string; expiresAt: number }> {
    const returnTo = kitReturnUrl(redirect, this.d.kitApiUrl)
    if (returnTo === null) {
      throw new AppError(
        400,
        'invalid_redirect',
        `Installs start in Kit's App Store, which sends its own address on https://${kitAppHost(this.d.kitApiUrl)}/.`,
      )
    }
    const now = this.now()
    await this.d.states.purge(now - KEEP_MS)
    const code = Array.from({ length: CODE_LENGTH }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('')
    const expiresAt = now + INSTALL_TTL_MS
    await this.d.states.saveInstall({ codeHash: sha256(code), returnTo, createdAt: now, expiresAt, usedAt: null })
    return { code: `${code.slice(0, 4)}-${code.slice(4)}`, expiresAt }
  }
}
