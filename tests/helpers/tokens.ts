/** Session tokens signed here by hand, so every malformed variant can be produced. */
import { createHmac } from 'node:crypto'
import { TEST_ISSUER, TEST_JWT_SECRET, TEST_PLUGIN_ID } from './app.ts'

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url')

export interface TokenOptions {
  claims?: Record<string, unknown>
  omit?: string[]
  secret?: string
  alg?: string
  header?: Record<string, unknown>
}

export function signToken({ claims = {}, omit = [], secret = TEST_JWT_SECRET, alg = 'HS256', header = {} }: TokenOptions = {}): string {
  const now = Math.floor(Date.now() / 1000)
  const payload: Record<string, unknown> = {
    iss: TEST_ISSUER,
    aud: TEST_PLUGIN_ID,
    sub: 'u_owner',
    cid: 'c_alpha',
    roles: ['owner'],
    iat: now,
    exp: now + 120,
    ...claims,
  }
  for (const key of omit) delete payload[key]
  const head = b64url(JSON.stringify({ alg, typ: 'JWT', ...header }))
  const body = b64url(JSON.stringify(payload))
  if (alg === 'none') return `${head}.${body}.`
  const algorithm = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg] ?? 'sha256'
  const signature = createHmac(algorithm, secret).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${signature}`
}

export const tokenFor = (cid: string, roles: string[] = ['owner']) => signToken({ claims: { cid, roles } })

/** Headers carrying one given token, as it was signed (for tests of that very token). */
export const auth = (token: string) => ({ authorization: `Bearer ${token}` })

/**
 * Headers of a member of `cid` whose token is signed afresh each time they are read (each
 * request, each spread), so a session declared once outlives any one token's two minutes.
 */
export function sessionFor(
  cid: string,
  { claims = {}, secret }: Pick<TokenOptions, 'claims' | 'secret'> = {},
): { readonly authorization: string } {
  return {
    get authorization() {
      return `Bearer ${signToken({ claims: { cid, roles: ['owner'], ...claims }, ...(secret ? { secret } : {}) })}`
    },
  }
}
