/**
 * A community's Kit connection: an API key, or an OAuth grant from *Connect with Kit*. Secrets are
 * write-only: the key is checked with Kit, keys and tokens are sealed with AES-256-GCM and never
 * leave this service except to the Kit client (and, for tokens, Kit's token and revoke endpoints).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Connection, KitAccount } from '#shared/api.ts'
import { BudgetBusyError } from '../kit/budget.ts'
import type { KitClientFactory } from '../kit/client.ts'
import { isKitError, type KitError } from '../kit/errors.ts'
import type { KitOAuthClient, TokenGrant } from '../kit/oauth.ts'
import type { KitAccountInfo } from '../core/kit.ts'
import { decryptSecret, encryptSecret, keyHint, sealedWithNewest, UnreadableSecretError, type KeyRing } from '../lib/crypto.ts'
import { AppError, retryAfterSeconds } from '../lib/errors.ts'
import type { KitAuth, StoredCredential } from '../core/ports.ts'
import type { ConnectionRecord, ConnectionRepository } from '../core/storage.ts'
import { OAuthTokens, tokenTimes } from './oauth-tokens.ts'

export const WHERE_TO_FIND_KEY =
  'Use a v4 API key: in Kit, open Settings › Developer › API keys, choose "Add a new key", and paste it here.'

/**
 * A community's saved key for the Kit callers. `unreadable`: no configured ENCRYPTION_KEY opens
 * the stored ciphertext any more (the key changed), so the owner must paste the key again.
 */
export type { StoredCredential }

export const UNREADABLE_KEY_MESSAGE =
  "The saved Kit key can no longer be read — paste the key again. (The plugin's encryption key changed since it was saved.)"

type Listener = (communityId: string) => void | Promise<void>

function toAccount(info: KitAccountInfo): KitAccount {
  return {
    id: info.account.id,
    name: info.account.name,
    primary_email_address: info.account.primary_email_address,
    plan_type: info.account.plan_type ?? null,
  }
}

/**
 * The DTO mapper: the only way a row leaves the service, and it never copies the ciphertext. A
 * connection invalid because its saved key can no longer be read says so in `message`.
 */
export function toConnectionDto(row: ConnectionRecord | undefined, unreadable = false, oauthAvailable = false): Connection {
  // Said only when it is offered: without it the answer is the contract's shape exactly.
  const offered = oauthAvailable ? { oauth_available: true as const } : {}
  if (!row) return { connected: false, status: 'disconnected', key_hint: null, account: null, updated_at: null, ...offered }
  return {
    connected: row.status === 'connected',
    status: row.status,
    key_hint: row.kind === 'oauth' ? null : row.keyHint,
    account: row.accountJson ? (JSON.parse(row.accountJson) as KitAccount) : null,
    updated_at: row.updatedAt,
    ...(unreadable ? { message: row.kind === 'oauth' ? UNREADABLE_GRANT_MESSAGE : UNREADABLE_KEY_MESSAGE } : {}),
    kind: row.kind,
    ...offered,
  }
}

export const UNREADABLE_GRANT_MESSAGE =
  "The saved Kit connection can no longer be read — connect Kit again. (The plugin's encryption key changed since it was saved.)"

/** A token source that only ever has the one token (checking a grant Kit has just given). */
const fixedToken = (token: string): KitAuth => ({
  kind: 'oauth',
  tokens: { current: async () => token, replace: async () => false },
})

export function kitFailure(err: KitError, kind: 'api_key' | 'oauth' = 'api_key'): AppError {
  switch (err.kind) {
    case 'rate_limited':
      return new AppError(503, 'kit_rate_limited', 'Kit is asking us to slow down. Try again in a minute.')
    case 'unavailable':
      return new AppError(502, 'kit_unreachable', 'Kit could not be reached right now. Try again in a few minutes.')
    case 'invalid_credentials':
      return kind === 'oauth'
        ? new AppError(409, 'connection_invalid', 'Kit no longer accepts this connection. Choose Connect with Kit to connect again.')
        : new AppError(409, 'connection_invalid', `Kit no longer accepts the saved API key. ${WHERE_TO_FIND_KEY}`)
    default:
      return new AppError(502, 'kit_error', `Kit refused the request: ${err.message}`)
  }
}

/** Too many of this account's panel calls already wait for Kit's budget: refuse rather than queue. */
export function kitBusy(err: BudgetBusyError): AppError {
  const seconds = retryAfterSeconds(err.retryAfterMs)
  return new AppError(503, 'kit_busy', `Too many requests to Kit for this account are already waiting. Try again in ${seconds} s.`, {
    'retry-after': String(seconds),
  })
}

export class ConnectionService {
  private readonly connectedListeners: Listener[] = []
  private readonly invalidListeners: Listener[] = []
  private readonly disconnectedListeners: Listener[] = []
  private readonly tokens: OAuthTokens

  constructor(
    private readonly repo: ConnectionRepository,
    private readonly encryptionKeys: KeyRing,
    private readonly kit: KitClientFactory,
    private readonly log: FastifyBaseLogger,
    /** Kit's OAuth endpoints; null when Connect with Kit is not configured. */
    private readonly oauth: KitOAuthClient | null = null,
  ) {
    this.tokens = new OAuthTokens({
      repo,
      keys: encryptionKeys,
      oauth,
      log,
      markInvalid: (communityId, credentialId) => this.markInvalid(communityId, credentialId),
    })
  }

  /** Whether the panel offers Connect with Kit. */
  get oauthAvailable(): boolean {
    return this.oauth !== null
  }

  /** Called after a community saves a working key (the pipeline resumes held deliveries). */
  onConnected(listener: Listener): void {
    this.connectedListeners.push(listener)
  }

  /** Called once when Kit stops accepting a community's working key (the platform is told). */
  onInvalid(listener: Listener): void {
    this.invalidListeners.push(listener)
  }

  /** Called before a community's saved key is deleted, while it can still be used (Kit webhooks are removed). */
  onDisconnected(listener: Listener): void {
    this.disconnectedListeners.push(listener)
  }

  private async connected(communityId: string): Promise<void> {
    for (const listener of this.connectedListeners) {
      try {
        await listener(communityId)
      } catch (err) {
        this.log.error({ err, communityId }, 'acting on a newly working connection failed')
      }
    }
  }

  /** Whether the community has a saved Kit key (working or not): cheap enough for every event. */
  isConnected(communityId: string): Promise<boolean> {
    return this.repo.exists(communityId)
  }

  /** Community id → credential id of every working connection (the consumer plans its claims by them). */
  connectedCredentials(): Promise<Map<string, string>> {
    return this.repo.connectedCredentials()
  }

  async get(communityId: string): Promise<Connection> {
    const row = await this.repo.get(communityId)
    if (!row) return toConnectionDto(undefined, false, this.oauthAvailable)
    const readable = (await this.open(row)) !== null
    return toConnectionDto(readable ? row : await this.repo.get(communityId), !readable, this.oauthAvailable)
  }

  async connect(communityId: string, rawKey: string): Promise<Connection> {
    const apiKey = rawKey.trim()
    if (apiKey.length < 8 || /\s/.test(apiKey)) {
      throw new AppError(400, 'invalid_request', `body.api_key does not look like a Kit API key. ${WHERE_TO_FIND_KEY}`)
    }
    let info: KitAccountInfo
    try {
      info = await this.kit.forKey(apiKey, { priority: 'interactive' }).getAccount()
    } catch (err) {
      if (err instanceof BudgetBusyError) throw kitBusy(err)
      if (!isKitError(err)) throw err
      if (err.kind === 'invalid_credentials') {
        throw new AppError(422, 'kit_rejected_key', `Kit rejected this API key (${err.message}). ${WHERE_TO_FIND_KEY}`)
      }
      if (err.kind === 'unavailable' || err.kind === 'rate_limited') {
        throw new AppError(
          502,
          'kit_unreachable',
          'Kit could not be reached to check the key. Nothing was saved; try again in a few minutes.',
        )
      }
      throw new AppError(422, 'kit_rejected_key', `Kit did not accept this API key (${err.message}). ${WHERE_TO_FIND_KEY}`)
    }
    const now = new Date().toISOString()
    const values: ConnectionRecord = {
      communityId,
      apiKeyCiphertext: encryptSecret(this.encryptionKeys, communityId, apiKey),
      keyHint: keyHint(apiKey),
      status: 'connected',
      accountJson: JSON.stringify(toAccount(info)),
      credentialId: this.kit.credentialIdFor(apiKey),
      createdAt: now,
      updatedAt: now,
      kind: 'api_key',
      refreshTokenCiphertext: null,
      tokenExpiresAt: null,
      tokenRefreshAt: null,
      refreshLeaseUntil: null,
    }
    await this.replaceWith(values)
    return this.get(communityId)
  }

  /**
   * Saves the grant Kit gave through *Connect with Kit* (replacing any key or earlier grant), once
   * Kit has answered for the account with its token. Kit refusing the token saves nothing.
   */
  async connectOAuth(communityId: string, grant: TokenGrant): Promise<Connection> {
    let info: KitAccountInfo
    try {
      // Known under a provisional id until Kit names the account (the id is the community's and the account's).
      const provisional = this.kit.oauthCredentialIdFor(communityId, 'new')
      info = await this.kit.forKey(fixedToken(grant.accessToken), { priority: 'interactive', credentialId: provisional }).getAccount()
    } catch (err) {
      await this.tokens.revokeQuietly(communityId, grant.refreshToken ?? grant.accessToken)
      if (err instanceof BudgetBusyError) throw kitBusy(err)
      if (!isKitError(err)) throw err
      if (err.kind === 'invalid_credentials')
        throw new AppError(422, 'kit_rejected_token', `Kit did not accept the new connection (${err.message}).`)
      throw kitFailure(err)
    }
    const grantedAt = Date.now()
    const times = tokenTimes(grant, grantedAt)
    const now = new Date(grantedAt).toISOString()
    await this.replaceWith({
      communityId,
      apiKeyCiphertext: encryptSecret(this.encryptionKeys, communityId, grant.accessToken),
      keyHint: '',
      status: 'connected',
      accountJson: JSON.stringify(toAccount(info)),
      credentialId: this.kit.oauthCredentialIdFor(communityId, info.account.id),
      createdAt: now,
      updatedAt: now,
      kind: 'oauth',
      refreshTokenCiphertext: grant.refreshToken ? encryptSecret(this.encryptionKeys, communityId, grant.refreshToken) : null,
      tokenExpiresAt: times.expiresAt,
      tokenRefreshAt: times.refreshAt,
      refreshLeaseUntil: null,
    })
    return this.get(communityId)
  }

  /** Saves a working connection in place of the one before (whose grant is revoked at Kit), then tells the listeners. */
  private async replaceWith(values: ConnectionRecord): Promise<void> {
    const before = await this.repo.get(values.communityId)
    await this.repo.save(values)
    this.tokens.forget(values.communityId)
    this.log.info({ communityId: values.communityId, credentialId: values.credentialId, kind: values.kind }, 'kit connection saved')
    if (before?.kind === 'oauth') await this.revokeGrant(before)
    await this.connected(values.communityId)
  }

  /** Revokes a saved grant at Kit, best effort (a disconnect or a replaced connection never waits on Kit). */
  private async revokeGrant(row: ConnectionRecord): Promise<void> {
    let token: string
    try {
      token = decryptSecret(this.encryptionKeys, row.communityId, row.refreshTokenCiphertext ?? row.apiKeyCiphertext)
    } catch (err) {
      if (err instanceof UnreadableSecretError) return
      throw err
    }
    await this.tokens.revokeQuietly(row.communityId, token)
  }

  async disconnect(communityId: string): Promise<void> {
    for (const listener of this.disconnectedListeners) {
      try {
        await listener(communityId)
      } catch (err) {
        this.log.error({ err, communityId }, 'acting on a disconnection failed')
      }
    }
    const row = await this.repo.get(communityId)
    await this.repo.delete(communityId)
    this.tokens.forget(communityId)
    if (row?.kind === 'oauth') await this.revokeGrant(row)
  }

  /**
   * The row's key in plaintext, or null when no configured key opens it any more: the connection
   * then turns invalid (its deliveries are held) and the owner is asked to paste the key again.
   */
  private async open(row: ConnectionRecord): Promise<string | null> {
    try {
      return decryptSecret(this.encryptionKeys, row.communityId, row.apiKeyCiphertext)
    } catch (err) {
      if (!(err instanceof UnreadableSecretError)) throw err
      const changed = await this.repo.update(
        row.communityId,
        { status: 'invalid', updatedAt: new Date().toISOString() },
        { status: 'connected' },
      )
      if (changed) {
        this.log.warn(
          { communityId: row.communityId, credentialId: row.credentialId, reason: err.message },
          'the stored Kit key cannot be decrypted with ENCRYPTION_KEY; connection marked invalid until the key is pasted again',
        )
      }
      return null
    }
  }

  /** For the Kit callers only: the community's credential (its key, or its token source), or null when not connected. */
  async credential(communityId: string): Promise<StoredCredential | null> {
    const row = await this.repo.get(communityId)
    if (!row) return null
    const secret = await this.open(row)
    const { credentialId, kind } = row
    if (secret === null) return { status: 'unreadable', kind, auth: null, credentialId }
    const auth: KitAuth = kind === 'oauth' ? { kind, tokens: this.tokens.source(row, secret) } : { kind, apiKey: secret }
    return { status: row.status, kind, auth, credentialId }
  }

  /**
   * After ENCRYPTION_KEY gained a new key: seals every stored key that an older key opens again
   * with the newest, so the older key can be removed once this has run. Keys no configured key
   * opens turn their connection invalid. Returns how many were sealed again.
   */
  async resealWithNewestKey(): Promise<number> {
    let resealed = 0
    for (const row of await this.repo.all()) {
      const refresh = row.refreshTokenCiphertext
      if (
        sealedWithNewest(this.encryptionKeys, row.apiKeyCiphertext) &&
        (refresh === null || sealedWithNewest(this.encryptionKeys, refresh))
      )
        continue
      const secret = await this.open(row)
      if (secret === null) continue
      let refreshToken: string | null
      try {
        refreshToken = refresh === null ? null : decryptSecret(this.encryptionKeys, row.communityId, refresh)
      } catch (err) {
        if (!(err instanceof UnreadableSecretError)) throw err
        continue
      }
      // Only if no other instance sealed it again (or a new key was saved, or a token refreshed) meanwhile.
      const sealed = {
        apiKeyCiphertext: encryptSecret(this.encryptionKeys, row.communityId, secret),
        ...(refreshToken === null ? {} : { refreshTokenCiphertext: encryptSecret(this.encryptionKeys, row.communityId, refreshToken) }),
      }
      if (await this.repo.update(row.communityId, sealed, { apiKeyCiphertext: row.apiKeyCiphertext })) resealed += 1
    }
    return resealed
  }

  /** Kit answered 401 for this community's key: show it in the panel and hold its deliveries. */
  async markInvalid(communityId: string, credentialId: string): Promise<void> {
    const changed = await this.repo.update(communityId, { status: 'invalid', updatedAt: new Date().toISOString() }, { status: 'connected' })
    if (!changed) return
    this.log.warn({ communityId, credentialId }, 'kit rejected the stored key; connection marked invalid')
    for (const listener of this.invalidListeners) {
      try {
        await listener(communityId)
      } catch (err) {
        this.log.error({ err, communityId }, 'acting on a connection turned invalid failed')
      }
    }
  }

  /** Runs a Kit call with the community's credential; a 401 marks the connection invalid. */
  async withKit<T>(communityId: string, call: (kit: ReturnType<KitClientFactory['forKey']>) => Promise<T>): Promise<T> {
    const credential = await this.credential(communityId)
    if (!credential) {
      throw new AppError(409, 'not_connected', 'Connect a Kit account first: paste your Kit API key under Connection.')
    }
    if (credential.status === 'unreadable') {
      throw new AppError(409, 'connection_invalid', credential.kind === 'oauth' ? UNREADABLE_GRANT_MESSAGE : UNREADABLE_KEY_MESSAGE)
    }
    try {
      return await call(this.kit.forKey(credential.auth, { priority: 'interactive', credentialId: credential.credentialId }))
    } catch (err) {
      if (err instanceof BudgetBusyError) throw kitBusy(err)
      if (!isKitError(err)) throw err
      if (err.kind === 'invalid_credentials') await this.markInvalid(communityId, credential.credentialId)
      throw kitFailure(err, credential.kind)
    }
  }

  /** Re-checks the key with Kit: used by Test connection. */
  async account(communityId: string): Promise<KitAccount> {
    const wasInvalid = (await this.repo.get(communityId))?.status === 'invalid'
    const info = await this.withKit(communityId, (kit) => kit.getAccount())
    await this.repo.update(communityId, {
      status: 'connected',
      accountJson: JSON.stringify(toAccount(info)),
      updatedAt: new Date().toISOString(),
    })
    if (wasInvalid) await this.connected(communityId)
    return toAccount(info)
  }
}
