/**
 * Kit credentials at rest: AES-256-GCM, a fresh 96-bit IV per write, the community id bound as
 * associated data so a ciphertext copied to another community's row does not decrypt.
 *
 * Keys rotate: ENCRYPTION_KEY holds one or more keys, newest first. Every write uses the newest and
 * names its key id in the ciphertext (`v2.<kid>.<iv>.<tag>.<body>`); older keys still decrypt what
 * they sealed. Ciphertexts of the first format (`v1.<iv>.<tag>.<body>`, no key id) are tried
 * against every configured key.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

export interface EncryptionKey {
  /** Named in every ciphertext the key seals. */
  id: string
  key: Buffer
}

/** Every configured key, the newest (used for every write) first. */
export type KeyRing = readonly [EncryptionKey, ...EncryptionKey[]]

/** A stored secret that no configured key opens: the key changed, or the ciphertext was damaged or moved. */
export class UnreadableSecretError extends Error {
  constructor(reason: string) {
    super(`the sealed secret cannot be read: ${reason}`)
    this.name = 'UnreadableSecretError'
  }
}

const LEGACY_VERSION = 'v1'
const VERSION = 'v2'
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/

/** The id of a key given without one: derived from the key, so it stays the same across restarts. */
export function derivedKeyId(key: Buffer): string {
  return `k${createHash('sha256').update('kit-for-appstation key id').update(key).digest('hex').slice(0, 10)}`
}

const aad = (communityId: string) => Buffer.from(`community:${communityId}`, 'utf8')

export function encryptSecret(ring: KeyRing, communityId: string, plaintext: string): string {
  const { id, key } = ring[0]
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(aad(communityId))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return [VERSION, id, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join('.')
}

/** The plaintext, or null when this key does not open the ciphertext (wrong key, damaged or moved). */
function open(key: Buffer, communityId: string, iv: string, tag: string, body: string): string | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'))
    decipher.setAAD(aad(communityId))
    decipher.setAuthTag(Buffer.from(tag, 'base64'))
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8')
  } catch (err) {
    if (err instanceof Error) return null
    throw err
  }
}

/** Throws `UnreadableSecretError` when no configured key opens the ciphertext for this community. */
export function decryptSecret(ring: KeyRing, communityId: string, sealed: string): string {
  const parts = sealed.split('.')
  if (parts[0] === LEGACY_VERSION && parts.length === 4) {
    const [, iv, tag, body] = parts as [string, string, string, string]
    for (const { key } of ring) {
      const plaintext = open(key, communityId, iv, tag, body)
      if (plaintext !== null) return plaintext
    }
    throw new UnreadableSecretError('no configured key opens it')
  }
  if (parts[0] === VERSION && parts.length === 5) {
    const [, id, iv, tag, body] = parts as [string, string, string, string, string]
    const entry = ring.find((k) => k.id === id)
    if (!entry) throw new UnreadableSecretError(`it was sealed with key "${id}", which is no longer configured`)
    const plaintext = open(entry.key, communityId, iv, tag, body)
    if (plaintext === null) throw new UnreadableSecretError(`key "${id}" does not open it`)
    return plaintext
  }
  throw new UnreadableSecretError('unrecognised ciphertext format')
}

/** Whether the ciphertext was sealed with the newest key (otherwise it is worth sealing again). */
export function sealedWithNewest(ring: KeyRing, sealed: string): boolean {
  const [version, id] = sealed.split('.')
  return version === VERSION && id === ring[0].id
}

/**
 * A key for a purpose other than encryption, derived from the newest encryption key with HKDF so
 * the encryption key itself is used for nothing else.
 */
export function derivedKey(ring: KeyRing, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ring[0].key, Buffer.alloc(0), `kit-for-appstation ${purpose}`, 32))
}

/** The only part of a key ever shown: its last four characters. */
export function keyHint(apiKey: string): string {
  return `…${apiKey.slice(-4)}`
}
