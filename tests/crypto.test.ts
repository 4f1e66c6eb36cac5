import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { decryptSecret, encryptSecret, keyHint } from '../server/lib/crypto.ts'

describe('credential encryption', () => {
  const key = randomBytes(32)

  it('round-trips and uses a fresh IV on every write', () => {
    const a = encryptSecret(key, 'c_1', 'kit_secret_value')
    const b = encryptSecret(key, 'c_1', 'kit_secret_value')
    expect(a).not.toBe(b)
    expect(a).not.toContain('kit_secret_value')
    expect(decryptSecret(key, 'c_1', a)).toBe('kit_secret_value')
  })

  it('does not decrypt under another community (associated data)', () => {
    const sealed = encryptSecret(key, 'c_1', 'kit_secret_value')
    expect(() => decryptSecret(key, 'c_2', sealed)).toThrow()
  })

  it('does not decrypt with another key or after tampering', () => {
    const sealed = encryptSecret(key, 'c_1', 'kit_secret_value')
    expect(() => decryptSecret(randomBytes(32), 'c_1', sealed)).toThrow()
    const parts = sealed.split('.')
    const body = Buffer.from(parts[3] as string, 'base64')
    body[0] = (body[0] as number) ^ 1
    parts[3] = body.toString('base64')
    expect(() => decryptSecret(key, 'c_1', parts.join('.'))).toThrow()
  })

  it('hints only the last four characters', () => {
    expect(keyHint('kit_abcdefgh1234')).toBe('…1234')
  })
})
