import { createCipheriv, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { parseEncryptionKeys } from '../server/config.ts'
import { decryptSecret, encryptSecret, keyHint, sealedWithNewest, UnreadableSecretError, type KeyRing } from '../server/lib/crypto.ts'

const ringOf = (...keys: [string, Buffer][]): KeyRing => {
  const ring = keys.map(([id, key]) => ({ id, key }))
  return ring as unknown as KeyRing
}

/** A ciphertext in the first format (no key id), exactly as earlier versions wrote it. */
function sealV1(key: Buffer, communityId: string, plaintext: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(`community:${communityId}`, 'utf8'))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join('.')
}

describe('credential encryption', () => {
  const key = randomBytes(32)
  const ring = ringOf(['current', key])

  it('round-trips and uses a fresh IV on every write', () => {
    const a = encryptSecret(ring, 'c_1', 'kit_secret_value')
    const b = encryptSecret(ring, 'c_1', 'kit_secret_value')
    expect(a).not.toBe(b)
    expect(a).not.toContain('kit_secret_value')
    expect(decryptSecret(ring, 'c_1', a)).toBe('kit_secret_value')
  })

  it('does not decrypt under another community (associated data)', () => {
    const sealed = encryptSecret(ring, 'c_1', 'kit_secret_value')
    expect(() => decryptSecret(ring, 'c_2', sealed)).toThrow(UnreadableSecretError)
  })

  it('does not decrypt with another key or after tampering', () => {
    const sealed = encryptSecret(ring, 'c_1', 'kit_secret_value')
    expect(() => decryptSecret(ringOf(['current', randomBytes(32)]), 'c_1', sealed)).toThrow(UnreadableSecretError)
    const parts = sealed.split('.')
    const body = Buffer.from(parts[4] as string, 'base64')
    body[0] = (body[0] as number) ^ 1
    parts[4] = body.toString('base64')
    expect(() => decryptSecret(ring, 'c_1', parts.join('.'))).toThrow(UnreadableSecretError)
    expect(() => decryptSecret(ring, 'c_1', 'garbage')).toThrow(UnreadableSecretError)
  })

  it('hints only the last four characters', () => {
    expect(keyHint('kit_abcdefgh1234')).toBe('…1234')
  })
})

describe('encryption key rotation', () => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)

  it('names the key id in every ciphertext and seals with the newest key', () => {
    const sealed = encryptSecret(ringOf(['2026-12', newKey], ['2026-01', oldKey]), 'c_1', 'kit_secret_value')
    expect(sealed.split('.').slice(0, 2)).toEqual(['v2', '2026-12'])
    expect(decryptSecret(ringOf(['2026-12', newKey]), 'c_1', sealed)).toBe('kit_secret_value')
    expect(() => decryptSecret(ringOf(['2026-12', oldKey]), 'c_1', sealed)).toThrow(UnreadableSecretError)
  })

  it('still decrypts what an older key sealed while that key is configured', () => {
    const sealed = encryptSecret(ringOf(['2026-01', oldKey]), 'c_1', 'kit_secret_value')
    const rotated = ringOf(['2026-12', newKey], ['2026-01', oldKey])
    expect(decryptSecret(rotated, 'c_1', sealed)).toBe('kit_secret_value')
    expect(sealedWithNewest(rotated, sealed)).toBe(false)
    expect(sealedWithNewest(rotated, encryptSecret(rotated, 'c_1', 'kit_secret_value'))).toBe(true)
  })

  it('says which key is missing once an older key is removed', () => {
    const sealed = encryptSecret(ringOf(['2026-01', oldKey]), 'c_1', 'kit_secret_value')
    expect(() => decryptSecret(ringOf(['2026-12', newKey]), 'c_1', sealed)).toThrow(
      /sealed with key "2026-01", which is no longer configured/,
    )
  })

  it('keeps decrypting the first format written with the first or only key, before and after a rotation', () => {
    const legacy = sealV1(oldKey, 'c_1', 'kit_secret_value')
    const single = parseEncryptionKeys(oldKey.toString('base64')) as KeyRing
    expect(decryptSecret(single, 'c_1', legacy)).toBe('kit_secret_value')
    const rotated = parseEncryptionKeys(`next:${newKey.toString('base64')} ${oldKey.toString('base64')}`) as KeyRing
    expect(decryptSecret(rotated, 'c_1', legacy)).toBe('kit_secret_value')
    expect(sealedWithNewest(rotated, legacy)).toBe(false)
    expect(() => decryptSecret(ringOf(['next', newKey]), 'c_1', legacy)).toThrow(UnreadableSecretError)
  })

  it('gives a key without an id the same id on every start, so its ciphertexts stay readable', () => {
    const sealed = encryptSecret(parseEncryptionKeys(oldKey.toString('base64')) as KeyRing, 'c_1', 'kit_secret_value')
    const later = parseEncryptionKeys(`${newKey.toString('base64')} ${oldKey.toString('base64')}`) as KeyRing
    expect(decryptSecret(later, 'c_1', sealed)).toBe('kit_secret_value')
  })
})
