/**
 * A community's Kit connection. The API key is write-only: it is checked with Kit, sealed with
 * AES-256-GCM and never leaves this service except to the Kit client.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Connection, KitAccount } from '#shared/api.ts'
import { BudgetBusyError } from '../kit/budget.ts'
import type { KitClientFactory } from '../kit/client.ts'
import { isKitError, type KitError } from '../kit/errors.ts'
import type { KitAccountInfo } from '../core/kit.ts'
import { decryptSecret, encryptSecret, keyHint, sealedWithNewest, UnreadableSecretError, type KeyRing } from '../lib/crypto.ts'
import { AppError, retryAfterSeconds } from '../lib/errors.ts'
import type { StoredCredential } from '../core/ports.ts'
import type { ConnectionRecord, ConnectionRepository } from '../core/storage.ts'

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
export function toConnectionDto(row: ConnectionRecord | undefined, unreadable = false): Connection {
  if (!row) return { connected: false, status: 'disconnected', key_hint: null, account: null, updated_at: null }
  return {
    connected: row.status === 'connected',
    status: row.status,
    key_hint: row.keyHint,
    account: row.accountJson ? (JSON.parse(row.accountJson) as KitAccount) : null,
    updated_at: row.updatedAt,
    ...(unreadable ? { message: UNREADABLE_KEY_MESSAGE } : {}),
  }
}

export function kitFailure(err: KitError): AppError {
  switch (err.kind) {
    case 'rate_limited':
      return new AppError(503, 'kit_rate_limited', 'Kit is asking us to slow down. Try again in a minute.')
    case 'unavailable':
      return new AppError(502, 'kit_unreachable', 'Kit could not be reached right now. Try again in a few minutes.')
    case 'invalid_credentials':
      return new AppError(409, 'connection_invalid', `Kit no longer accepts the saved API key. ${WHERE_TO_FIND_KEY}`)
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

  constructor(
    private readonly repo: ConnectionRepository,
    private readonly encryptionKeys: KeyRing,
    private readonly kit: KitClientFactory,
    private readonly log: FastifyBaseLogger,
  ) {}

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
    if (!row) return toConnectionDto(undefined)
    const readable = (await this.open(row)) !== null
    return toConnectionDto(readable ? row : await this.repo.get(communityId), !readable)
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
    const values = {
      communityId,
      apiKeyCiphertext: encryptSecret(this.encryptionKeys, communityId, apiKey),
      keyHint: keyHint(apiKey),
      status: 'connected' as const,
      accountJson: JSON.stringify(toAccount(info)),
      credentialId: this.kit.credentialIdFor(apiKey),
      createdAt: now,
      updatedAt: now,
    }
    await this.repo.save(values)
    this.log.info({ communityId, credentialId: values.credentialId }, 'kit connection saved')
    await this.connected(communityId)
    return this.get(communityId)
  }

  async disconnect(communityId: string): Promise<void> {
    for (const listener of this.disconnectedListeners) {
      try {
        await listener(communityId)
      } catch (err) {
        this.log.error({ err, communityId }, 'acting on a disconnection failed')
      }
    }
    await this.repo.delete(communityId)
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

  /** For the Kit callers only: the decrypted key of a community, or null when not connected. */
  async credential(communityId: string): Promise<StoredCredential | null> {
    const row = await this.repo.get(communityId)
    if (!row) return null
    const apiKey = await this.open(row)
    if (apiKey === null) return { status: 'unreadable', apiKey: null, credentialId: row.credentialId }
    return { apiKey, credentialId: row.credentialId, status: row.status }
  }

  /**
   * After ENCRYPTION_KEY gained a new key: seals every stored key that an older key opens again
   * with the newest, so the older key can be removed once this has run. Keys no configured key
   * opens turn their connection invalid. Returns how many were sealed again.
   */
  async resealWithNewestKey(): Promise<number> {
    let resealed = 0
    for (const row of await this.repo.all()) {
      if (sealedWithNewest(this.encryptionKeys, row.apiKeyCiphertext)) continue
      const apiKey = await this.open(row)
      if (apiKey === null) continue
      // Only if no other instance sealed it again (or a new key was saved) meanwhile.
      const sealed = encryptSecret(this.encryptionKeys, row.communityId, apiKey)
      if (await this.repo.update(row.communityId, { apiKeyCiphertext: sealed }, { apiKeyCiphertext: row.apiKeyCiphertext })) resealed += 1
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

  /** Runs a Kit call with the community's key; a 401 marks the connection invalid. */
  async withKit<T>(communityId: string, call: (kit: ReturnType<KitClientFactory['forKey']>) => Promise<T>): Promise<T> {
    const credential = await this.credential(communityId)
    if (!credential) {
      throw new AppError(409, 'not_connected', 'Connect a Kit account first: paste your Kit API key under Connection.')
    }
    if (credential.status === 'unreadable') throw new AppError(409, 'connection_invalid', UNREADABLE_KEY_MESSAGE)
    try {
      return await call(this.kit.forKey(credential.apiKey, { priority: 'interactive', credentialId: credential.credentialId }))
    } catch (err) {
      if (err instanceof BudgetBusyError) throw kitBusy(err)
      if (!isKitError(err)) throw err
      if (err.kind === 'invalid_credentials') await this.markInvalid(communityId, credential.credentialId)
      throw kitFailure(err)
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
