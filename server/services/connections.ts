/**
 * A community's Kit connection. The API key is write-only: it is checked with Kit, sealed with
 * AES-256-GCM and never leaves this service except to the Kit client.
 */
import { and, eq, sql } from 'drizzle-orm'
import type { FastifyBaseLogger } from 'fastify'
import type { Connection, KitAccount } from '#shared/api.ts'
import type { Db } from '../db/index.ts'
import { connections, type ConnectionRow } from '../db/schema/index.ts'
import { BudgetBusyError } from '../kit/budget.ts'
import type { KitClientFactory } from '../kit/client.ts'
import { isKitError, type KitError } from '../kit/errors.ts'
import type { KitAccountInfo } from '../kit/types.ts'
import { decryptSecret, encryptSecret, keyHint, sealedWithNewest, UnreadableSecretError, type KeyRing } from '../lib/crypto.ts'
import { AppError, retryAfterSeconds } from '../lib/errors.ts'

export const WHERE_TO_FIND_KEY =
  'Use a v4 API key: in Kit, open Settings › Developer › API keys, choose "Add a new key", and paste it here.'

/**
 * A community's saved key for the Kit callers. `unreadable`: no configured ENCRYPTION_KEY opens
 * the stored ciphertext any more (the key changed), so the owner must paste the key again.
 */
export type StoredCredential =
  | { status: 'connected' | 'invalid'; apiKey: string; credentialId: string }
  | { status: 'unreadable'; apiKey: null; credentialId: string }

export const UNREADABLE_KEY_MESSAGE =
  'The saved Kit key can no longer be read — paste the key again. (The plugin\'s encryption key changed since it was saved.)'

type Listener = (communityId: string) => void

export const NOT_CONNECTED_REASON = 'No Kit account is connected for this community, so nothing was sent to Kit.'

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
export function toConnectionDto(row: ConnectionRow | undefined, unreadable = false): Connection {
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
      return new AppError(
        409,
        'connection_invalid',
        `Kit no longer accepts the saved API key. ${WHERE_TO_FIND_KEY}`,
      )
    default:
      return new AppError(502, 'kit_error', `Kit refused the request: ${err.message}`)
  }
}

/** Too many of this account's panel calls already wait for Kit's budget: refuse rather than queue. */
export function kitBusy(err: BudgetBusyError): AppError {
  const seconds = retryAfterSeconds(err.retryAfterMs)
  return new AppError(
    503,
    'kit_busy',
    `Too many requests to Kit for this account are already waiting. Try again in ${seconds} s.`,
    { 'retry-after': String(seconds) },
  )
}

export class ConnectionService {
  private readonly connectedListeners: Listener[] = []
  private readonly existsQuery

  constructor(
    private readonly db: Db,
    private readonly encryptionKeys: KeyRing,
    private readonly kit: KitClientFactory,
    private readonly log: FastifyBaseLogger,
  ) {
    this.existsQuery = db
      .select({ communityId: connections.communityId })
      .from(connections)
      .where(eq(connections.communityId, sql.placeholder('communityId')))
      .prepare()
  }

  /** Called after a community saves a working key (the pipeline resumes held deliveries). */
  onConnected(listener: Listener): void {
    this.connectedListeners.push(listener)
  }

  /** Whether the community has a saved Kit key (working or not): cheap enough for every event. */
  isConnected(communityId: string): boolean {
    return this.existsQuery.get({ communityId }) !== undefined
  }

  private row(communityId: string): ConnectionRow | undefined {
    return this.db.select().from(connections).where(eq(connections.communityId, communityId)).get()
  }

  get(communityId: string): Connection {
    const row = this.row(communityId)
    if (!row) return toConnectionDto(undefined)
    const readable = this.open(row) !== null
    return toConnectionDto(readable ? row : this.row(communityId), !readable)
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
        throw new AppError(502, 'kit_unreachable', 'Kit could not be reached to check the key. Nothing was saved; try again in a few minutes.')
      }
      throw new AppError(422, 'kit_rejected_key', `Kit did not accept this API key (${err.message}). ${WHERE_TO_FIND_KEY}`)
    }
    const now = new Date().toISOString()
    const values = {
      apiKeyCiphertext: encryptSecret(this.encryptionKeys, communityId, apiKey),
      keyHint: keyHint(apiKey),
      status: 'connected' as const,
      accountJson: JSON.stringify(toAccount(info)),
      credentialId: this.kit.credentialIdFor(apiKey),
      updatedAt: now,
    }
    this.db
      .insert(connections)
      .values({ communityId, createdAt: now, ...values })
      .onConflictDoUpdate({ target: connections.communityId, set: values })
      .run()
    this.log.info({ communityId, credentialId: values.credentialId }, 'kit connection saved')
    for (const listener of this.connectedListeners) listener(communityId)
    return this.get(communityId)
  }

  disconnect(communityId: string): void {
    this.db.delete(connections).where(eq(connections.communityId, communityId)).run()
  }

  /**
   * The row's key in plaintext, or null when no configured key opens it any more: the connection
   * then turns invalid (its deliveries are held) and the owner is asked to paste the key again.
   */
  private open(row: ConnectionRow): string | null {
    try {
      return decryptSecret(this.encryptionKeys, row.communityId, row.apiKeyCiphertext)
    } catch (err) {
      if (!(err instanceof UnreadableSecretError)) throw err
      const result = this.db
        .update(connections)
        .set({ status: 'invalid', updatedAt: new Date().toISOString() })
        .where(and(eq(connections.communityId, row.communityId), eq(connections.status, 'connected')))
        .run()
      if (result.changes > 0) {
        this.log.warn(
          { communityId: row.communityId, credentialId: row.credentialId, reason: err.message },
          'the stored Kit key cannot be decrypted with ENCRYPTION_KEY; connection marked invalid until the key is pasted again',
        )
      }
      return null
    }
  }

  /** For the Kit callers only: the decrypted key of a community, or null when not connected. */
  credential(communityId: string): StoredCredential | null {
    const row = this.row(communityId)
    if (!row) return null
    const apiKey = this.open(row)
    if (apiKey === null) return { status: 'unreadable', apiKey: null, credentialId: row.credentialId }
    return { apiKey, credentialId: row.credentialId, status: row.status }
  }

  /**
   * After ENCRYPTION_KEY gained a new key: seals every stored key that an older key opens again
   * with the newest, so the older key can be removed once this has run. Keys no configured key
   * opens turn their connection invalid. Returns how many were sealed again.
   */
  resealWithNewestKey(): number {
    let resealed = 0
    for (const row of this.db.select().from(connections).all()) {
      if (sealedWithNewest(this.encryptionKeys, row.apiKeyCiphertext)) continue
      const apiKey = this.open(row)
      if (apiKey === null) continue
      this.db
        .update(connections)
        .set({ apiKeyCiphertext: encryptSecret(this.encryptionKeys, row.communityId, apiKey) })
        .where(and(eq(connections.communityId, row.communityId), eq(connections.apiKeyCiphertext, row.apiKeyCiphertext)))
        .run()
      resealed += 1
    }
    return resealed
  }

  /** Kit answered 401 for this community's key: show it in the panel and hold its deliveries. */
  markInvalid(communityId: string, credentialId: string): void {
    const result = this.db
      .update(connections)
      .set({ status: 'invalid', updatedAt: new Date().toISOString() })
      .where(eq(connections.communityId, communityId))
      .run()
    if (result.changes > 0) this.log.warn({ communityId, credentialId }, 'kit rejected the stored key; connection marked invalid')
  }

  /** Runs a Kit call with the community's key; a 401 marks the connection invalid. */
  async withKit<T>(communityId: string, call: (kit: ReturnType<KitClientFactory['forKey']>) => Promise<T>): Promise<T> {
    const credential = this.credential(communityId)
    if (!credential) {
      throw new AppError(409, 'not_connected', 'Connect a Kit account first: paste your Kit API key under Connection.')
    }
    if (credential.status === 'unreadable') throw new AppError(409, 'connection_invalid', UNREADABLE_KEY_MESSAGE)
    try {
      return await call(this.kit.forKey(credential.apiKey, { priority: 'interactive', credentialId: credential.credentialId }))
    } catch (err) {
      if (err instanceof BudgetBusyError) throw kitBusy(err)
      if (!isKitError(err)) throw err
      if (err.kind === 'invalid_credentials') this.markInvalid(communityId, credential.credentialId)
      throw kitFailure(err)
    }
  }

  /** Re-checks the key with Kit: used by Test connection. */
  async account(communityId: string): Promise<KitAccount> {
    const wasInvalid = this.row(communityId)?.status === 'invalid'
    const info = await this.withKit(communityId, (kit) => kit.getAccount())
    this.db
      .update(connections)
      .set({ status: 'connected', accountJson: JSON.stringify(toAccount(info)), updatedAt: new Date().toISOString() })
      .where(eq(connections.communityId, communityId))
      .run()
    if (wasInvalid) for (const listener of this.connectedListeners) listener(communityId)
    return toAccount(info)
  }
}
