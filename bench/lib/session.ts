/** App Station session tokens (HS256, signed here) and the few settings-API calls the runs need. */
import { createHmac } from 'node:crypto'

const b64url = (value: string) => Buffer.from(value).toString('base64url')

export function sessionToken(secret: string, issuer: string, communityId: string): string {
  const now = Math.floor(Date.now() / 1000)
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const body = b64url(
    JSON.stringify({ iss: issuer, aud: 'kit', sub: 'u_bench_owner', cid: communityId, roles: ['owner'], iat: now, exp: now + 240 }),
  )
  const signature = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${signature}`
}

export interface Api {
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>
}

/** A settings-API client for one community; a fresh token per call, as the panel would refresh it. */
export function api(baseUrl: string, jwtSecret: string, communityId: string): Api {
  return {
    async call(method, path, body) {
      const response = await fetch(`${baseUrl}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${sessionToken(jwtSecret, baseUrl, communityId)}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      const text = await response.text()
      return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown) }
    },
  }
}

/** PUT /connection; throws unless the server answers 200 connected. */
export async function connect(client: Api, apiKey: string): Promise<void> {
  const { status, body } = await client.call('PUT', '/connection', { api_key: apiKey })
  if (status !== 200) throw new Error(`PUT /api/v1/connection answered ${status}: ${JSON.stringify(body)}`)
}

export async function connectionStatus(client: Api): Promise<string> {
  const { status, body } = await client.call('GET', '/connection')
  if (status !== 200) throw new Error(`GET /api/v1/connection answered ${status}`)
  return (body as { status: string }).status
}

/**
 * Connect with Kit as the panel's popup does: the authorization starts, Kit's consent page (the
 * stand-in approves at once) sends the popup to the callback, which completes the connection.
 */
export async function connectWithKit(client: Api, serverUrl: string): Promise<void> {
  const start = await client.call('POST', '/connection/oauth/start', {})
  if (start.status !== 200) throw new Error(`POST /api/v1/connection/oauth/start answered ${start.status}: ${JSON.stringify(start.body)}`)
  const atKit = await fetch((start.body as { authorize_url: string }).authorize_url, { redirect: 'manual' })
  const back = new URL(atKit.headers.get('location') ?? '')
  const page = await fetch(`${serverUrl}${back.pathname}${back.search}`)
  if (page.status !== 200) throw new Error(`the callback answered ${page.status}`)
  const status = await connectionStatus(client)
  if (status !== 'connected') throw new Error(`the connection is ${status} after the callback`)
}
