import { describe, expect, it } from 'vitest'
import { isOAuthCredentialId, oauthCredentialIdFor, saysTokenExpired } from '../../server/kit/client.ts'
import { RequestBudget } from '../../server/kit/budget.ts'
import { pkcePair } from '../../server/kit/oauth.ts'
import { tokenTimes } from '../../server/services/oauth-tokens.ts'
import { kitAppHost, kitReturnUrl, tenantNameFor } from '../../server/services/oauth.ts'
import { createHash } from 'node:crypto'

describe('Connect with Kit, the pure parts', () => {
  it('refreshes once half of expires_in is over, and never guesses a life Kit did not give', () => {
    expect(tokenTimes({ expiresInS: 7200 }, 1_000)).toEqual({ expiresAt: 7_201_000, refreshAt: 3_601_000 })
    expect(tokenTimes({ expiresInS: null }, 1_000)).toEqual({ expiresAt: null, refreshAt: null })
  })

  it('tells Kit’s "expired" 401 from a refused token', () => {
    expect(saysTokenExpired(['The access token expired'])).toBe(true)
    expect(saysTokenExpired(['The access token has expired'])).toBe(true)
    expect(saysTokenExpired(['The access token is invalid'])).toBe(false)
    expect(saysTokenExpired(['The API key is invalid'])).toBe(false)
  })

  it('names an OAuth connection by community and account, recognisably, never by its rotating tokens', () => {
    const key = Buffer.alloc(32, 7)
    const id = oauthCredentialIdFor(key, 'c_1', 1001)
    expect(isOAuthCredentialId(id)).toBe(true)
    expect(id).toBe(oauthCredentialIdFor(key, 'c_1', 1001))
    expect(id).not.toBe(oauthCredentialIdFor(key, 'c_2', 1001))
    expect(id).not.toBe(oauthCredentialIdFor(key, 'c_1', 1002))
    expect(isOAuthCredentialId('0123456789abcdef0123456789abcdef')).toBe(false)
  })

  it('gives each credential kind its own rate', () => {
    const budget = new RequestBudget({
      limit: 120,
      windowMs: 60_000,
      rates: (id) => (isOAuthCredentialId(id) ? { limit: 600, windowMs: 60_000 } : null),
    })
    expect(budget.rateOf('oauth_abc')).toMatchObject({ limit: 600, windowMs: 60_000, interactiveReserve: 30 })
    expect(budget.rateOf('abc')).toMatchObject({ limit: 120, windowMs: 60_000, interactiveReserve: 6 })
  })

  it('makes an S256 PKCE pair', () => {
    const { verifier, challenge } = pkcePair()
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(challenge).toBe(createHash('sha256').update(verifier).digest('base64url'))
  })

  it("accepts only Kit's app as the place an install returns to", () => {
    expect(kitAppHost('https://api.kit.com')).toBe('app.kit.com')
    expect(kitAppHost('http://127.0.0.1:8790')).toBe('127.0.0.1')
    expect(kitReturnUrl('https://app.kit.com/apps/42/install', 'https://api.kit.com')).toBe('https://app.kit.com/apps/42/install')
    for (const bad of [
      'http://app.kit.com/apps',
      'https://app.kit.com.evil.example/',
      'https://evil.example/',
      'https://u@app.kit.com/',
      'nonsense',
      undefined,
    ]) {
      expect(kitReturnUrl(bad, 'https://api.kit.com'), String(bad)).toBeNull()
    }
    expect(tenantNameFor('c_123')).toContain('c_123')
  })
})
