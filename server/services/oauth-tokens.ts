/**
 * The access tokens of OAuth connections (*Connect with Kit*): handed to the Kit client as an
 * `AccessTokenSource`, refreshed once less than half of their life remains or when Kit says one
 * expired, sealed at rest like API keys.
 *
 * Kit rotates the refresh token on every refresh (the old one stops working), so exactly one
 * refresh per connection may run at a time across every instance. In this process one refresh per
 * connection runs and every caller waits for it (single flight); across instances the refresher
 * first takes a short lease on the connection row — a conditional update that succeeds only while
 * the row still holds the access token being replaced and no other lease is live. An instance that
 * loses the race re-reads the row until the winner's tokens are there, and uses them.
 *
 * Limits: the refresher dying between Kit's answer and storing it loses the rotated refresh token
 * (the lease then expires, the next refresh is refused, and the connection turns invalid until the
 * owner connects again); every refresh is one Kit request outside the API budget.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { AccessTokenSource } from '../core/ports.ts'
import type { ConnectionRecord, ConnectionRepository } from '../core/storage.ts'
import { KitError } from '../kit/errors.ts'
import { KitOAuthError, type KitOAuthClient, type TokenGrant } from '../kit/oauth.ts'
import { decryptSecret, encryptSecret, type KeyRing } from '../lib/crypto.ts'

export interface OAuthTokensDeps {
  repo: ConnectionRepository
  keys: KeyRing
  /** Null when Connect with Kit is not configured: saved grants then cannot be refreshed. */
  oauth: KitOAuthClient | null
  log: FastifyBaseLogger
  /** Kit refused the refresh: the connection turns invalid and the platform is told. */
  markInvalid(communityId: string, credentialId: string): Promise<void>
  now?: () => number
  /** How long a refresher holds the row; default 30 s (three times Kit's request timeout). */
  leaseMs?: number
  /** How often an instance waiting for another's refresh reads the row again; default 100 ms. */
  pollMs?: number
}

/** A connection's current access token as this process knows it. */
interface Known {
  /** The row's sealed access token: changes with every refresh (a fresh IV), so it tells tokens apart. */
  ciphertext: string
  token: string
  credentialId: string
  expiresAt: number | null
  refreshAt: number | null
  /** After a refresh Kit could not answer: not tried again before this (epoch ms). */
  retryAt: number
}

/** A token closer to its expiry than this (or an eighth of its life) is not relied on when its refresh fails. */
const EXPIRY_MARGIN_MS = 5_000
/** After a refresh Kit could not answer, while the token still works: the next try waits this long. */
const RETRY_REFRESH_MS = 30_000

/** The access token's life and the moment half of it is over, from the moment it was granted. */
export function tokenTimes(
  grant: Pick<TokenGrant, 'expiresInS'>,
  grantedAt: number,
): { expiresAt: number | null; refreshAt: number | null } {
  if (grant.expiresInS === null) return { expiresAt: null, refreshAt: null }
  return { expiresAt: grantedAt + grant.expiresInS * 1000, refreshAt: grantedAt + grant.expiresInS * 500 }
}

const refused = (message: string, status: number | null = null) => new KitError('invalid_credentials', status, [message])

export class OAuthTokens {
  private readonly now: () => number
  private readonly known = new Map<string, Known>()
  private readonly flights = new Map<string, Promise<Known>>()

  constructor(private readonly d: OAuthTokensDeps) {
    this.now = d.now ?? Date.now
  }

  /** The token source of a connection row just read (whose access token is `token`). */
  source(row: ConnectionRecord, token: string): AccessTokenSource {
    this.observe(row, token)
    const { communityId } = row
    return {
      current: () => this.current(communityId),
      replace: (sent, expired) => this.replace(communityId, sent, expired),
    }
  }

  /** Forgets what this process knew of the community's tokens (a new connection, a disconnect). */
  forget(communityId: string): void {
    this.known.delete(communityId)
  }

  /** A row read from the database: its token is taken unless this process already holds a newer one. */
  private observe(row: ConnectionRecord, token: string): Known {
    const held = this.known.get(row.communityId)
    if (held?.ciphertext === row.apiKeyCiphertext) return held
    const newer = held && held.credentialId === row.credentialId && (held.expiresAt ?? -Infinity) > (row.tokenExpiresAt ?? Infinity)
    if (held && newer) return held
    const known: Known = {
      ciphertext: row.apiKeyCiphertext,
      token,
      credentialId: row.credentialId,
      expiresAt: row.tokenExpiresAt,
      refreshAt: row.tokenRefreshAt,
      retryAt: 0,
    }
    this.known.set(row.communityId, known)
    return known
  }

  private async current(communityId: string): Promise<string> {
    const known = this.known.get(communityId) ?? (await this.load(communityId))
    const now = this.now()
    if (known.refreshAt === null || now < known.refreshAt || now < known.retryAt) return known.token
    return (await this.refreshed(communityId, known)).token
  }

  private async replace(communityId: string, sent: string, expired: boolean): Promise<boolean> {
    const running = this.flights.get(communityId)
    if (running) await running
    const known = this.known.get(communityId) ?? (await this.load(communityId))
    if (known.token !== sent) return true
    // Another instance may have refreshed (Kit then refuses the old token): the row says.
    const latest = await this.load(communityId)
    if (latest.token !== sent) return true
    if (expired) {
      await this.refreshed(communityId, latest, true)
      return true
    }
    // Refused while another instance refreshes: Kit has rotated the token, the row is about to say so.
    return this.awaitRefresh(communityId, latest)
  }

  /** While another instance holds the refresh lease: whether its new token arrives before the lease ends. */
  private async awaitRefresh(communityId: string, from: Known): Promise<boolean> {
    for (;;) {
      const row = await this.d.repo.get(communityId)
      if (row?.kind !== 'oauth') return false
      if (row.apiKeyCiphertext !== from.ciphertext) {
        this.observe(row, decryptSecret(this.d.keys, communityId, row.apiKeyCiphertext))
        return true
      }
      if (row.refreshLeaseUntil === null || row.refreshLeaseUntil <= this.now()) return false
      await new Promise((resolve) => setTimeout(resolve, this.d.pollMs ?? 100))
    }
  }

  /** The row as stored now; refused when the community has no OAuth connection any more. */
  private async load(communityId: string): Promise<Known> {
    const row = await this.d.repo.get(communityId)
    if (row?.kind !== 'oauth') throw refused('The Kit connection was removed or replaced.')
    if (row.status !== 'connected') throw refused('Kit no longer accepts this connection: connect Kit again.')
    return this.observe(row, decryptSecret(this.d.keys, communityId, row.apiKeyCiphertext))
  }

  /** The token after `from`'s refresh: one refresh per connection in this process, every caller waiting for it. */
  private refreshed(communityId: string, from: Known, expired = false): Promise<Known> {
    const running = this.flights.get(communityId)
    if (running) return running
    const flight = this.refresh(communityId, from, expired).finally(() => this.flights.delete(communityId))
    this.flights.set(communityId, flight)
    return flight
  }

  /** Takes the row's lease and refreshes, or waits for the instance that holds it and takes its tokens. */
  private async refresh(communityId: string, from: Known, expired: boolean): Promise<Known> {
    const leaseMs = this.d.leaseMs ?? 30_000
    const giveUpAt = this.now() + 2 * leaseMs
    for (;;) {
      const row = await this.d.repo.get(communityId)
      if (row?.kind !== 'oauth') throw refused('The Kit connection was removed or replaced.')
      if (row.apiKeyCiphertext !== from.ciphertext) return this.observe(row, decryptSecret(this.d.keys, communityId, row.apiKeyCiphertext))
      if (row.status !== 'connected') throw refused('Kit no longer accepts this connection: connect Kit again.')
      const now = this.now()
      if (await this.d.repo.claimRefresh(communityId, from.ciphertext, now, now + leaseMs)) return this.refreshHeld(row, from, expired)
      if (now > giveUpAt) throw new KitError('unavailable', null, ['The Kit connection is being renewed elsewhere; try again shortly.'])
      await new Promise((resolve) => setTimeout(resolve, this.d.pollMs ?? 100))
    }
  }

  /** This instance holds the lease: asks Kit, stores the rotated tokens, gives the lease up. */
  private async refreshHeld(row: ConnectionRecord, from: Known, expired: boolean): Promise<Known> {
    const { communityId, credentialId } = row
    let grant: TokenGrant
    try {
      if (!this.d.oauth) throw refused('Connect with Kit is no longer configured on this server (KIT_OAUTH_CLIENT_ID): connect Kit again.')
      if (row.refreshTokenCiphertext === null) throw refused('Kit gave this connection no refresh token: connect Kit again.')
      grant = await this.d.oauth.refresh(decryptSecret(this.d.keys, communityId, row.refreshTokenCiphertext))
    } catch (err) {
      await this.d.repo.releaseRefresh(communityId, from.ciphertext)
      return this.failed(err, row, from, expired)
    }
    const now = this.now()
    const times = tokenTimes(grant, now)
    const sealed = {
      apiKeyCiphertext: encryptSecret(this.d.keys, communityId, grant.accessToken),
      refreshTokenCiphertext: grant.refreshToken ? encryptSecret(this.d.keys, communityId, grant.refreshToken) : row.refreshTokenCiphertext,
      tokenExpiresAt: times.expiresAt,
      tokenRefreshAt: times.refreshAt,
    }
    if (!(await this.d.repo.saveRefreshed(communityId, from.ciphertext, sealed))) {
      // Disconnected or connected anew meanwhile: these tokens belong to nobody.
      await this.revokeQuietly(communityId, grant.refreshToken ?? grant.accessToken)
      throw refused('The Kit connection was removed or replaced.')
    }
    this.d.log.info({ communityId, credentialId, expiresInS: grant.expiresInS }, 'kit oauth token refreshed')
    const known: Known = { ciphertext: sealed.apiKeyCiphertext, token: grant.accessToken, credentialId, ...times, retryAt: 0 }
    this.known.set(communityId, known)
    return known
  }

  /**
   * The refresh gave no tokens. Kit refused the grant: the connection turns invalid (deliveries are
   * held, the platform is told). Kit could not be asked: the current token serves while it lives.
   */
  private async failed(err: unknown, row: ConnectionRecord, from: Known, expired: boolean): Promise<Known> {
    const { communityId, credentialId } = row
    const grantRefused = err instanceof KitOAuthError && err.failure === 'invalid_grant'
    if (grantRefused || err instanceof KitError) {
      this.d.log.warn(
        { communityId, credentialId, code: grantRefused ? 'invalid_grant' : 'not_renewable' },
        'kit refused to renew the oauth token',
      )
      await this.d.markInvalid(communityId, credentialId)
      throw err instanceof KitError ? err : refused('Kit refused to renew the connection (invalid_grant): connect Kit again.', err.status)
    }
    if (!(err instanceof KitOAuthError)) throw err
    this.d.log.warn(
      { communityId, credentialId, status: err.status, code: err.code ?? err.failure },
      'kit oauth token could not be refreshed',
    )
    const margin =
      from.refreshAt === null || from.expiresAt === null ? 0 : Math.min(EXPIRY_MARGIN_MS, (from.expiresAt - from.refreshAt) / 4)
    const usable = !expired && (from.expiresAt === null || this.now() < from.expiresAt - margin)
    if (!usable) throw new KitError('unavailable', err.status, ['Kit could not renew the connection just now; it is tried again shortly.'])
    from.retryAt = this.now() + RETRY_REFRESH_MS
    return from
  }

  /** Revokes a token at Kit, best effort: a failure is logged (without the token), never thrown. */
  async revokeQuietly(communityId: string, token: string): Promise<void> {
    if (!this.d.oauth) return
    try {
      await this.d.oauth.revoke(token)
    } catch (err) {
      const detail = err instanceof KitOAuthError ? { status: err.status, code: err.failure } : { code: 'error' }
      this.d.log.warn({ communityId, ...detail }, 'kit oauth token could not be revoked')
    }
  }
}
