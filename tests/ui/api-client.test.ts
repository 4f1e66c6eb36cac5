import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import type { HostBridge } from '../../ui/src/host/bridge.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { aConnection } from './factories.ts'

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

function withBridge(requestToken: () => Promise<string>): HostBridge {
  return { embedded: true, handshake: vi.fn(), requestToken: vi.fn(requestToken), send: vi.fn(), dispose: vi.fn() }
}

describe('API client', () => {
  const fetchMock = vi.fn<(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>>()
  const calls = () =>
    fetchMock.mock.calls.map(([input, init]) => {
      const req = input instanceof Request ? input : new Request(String(input), init)
      const headers = new Headers(init?.headers ?? req.headers)
      return { url: req.url, method: init?.method ?? req.method, auth: headers.get('authorization') }
    })

  beforeEach(() => {
    setActivePinia(createPinia())
    fetchMock.mockReset()
    vi.stubGlobal('fetch', fetchMock)
  })
  afterEach(() => vi.unstubAllGlobals())

  async function sessionWith(token: string, fresh: () => Promise<string> = () => Promise.resolve('fresh-token')) {
    const session = useSessionStore()
    const bridge = withBridge(fresh)
    await session.start(
      { ...bridge, handshake: vi.fn().mockResolvedValue({ token, context: { cid: 'c', locale: 'en', theme: 'light' } }) },
      '0',
    )
    return { session, bridge }
  }

  it('calls /api/v1 with the token as a bearer header and never in the URL', async () => {
    await sessionWith('first-token')
    fetchMock.mockResolvedValueOnce(json(200, aConnection()))
    await expect(api.getConnection()).resolves.toMatchObject({ status: 'connected' })
    const [call] = calls()
    expect(call?.url).toMatch(/\/api\/v1\/connection$/)
    expect(call?.auth).toBe('Bearer first-token')
    expect(call?.url).not.toContain('token')
  })

  it('asks the host for a fresh token after a 401 and retries the request once', async () => {
    const { bridge } = await sessionWith('old-token')
    fetchMock
      .mockResolvedValueOnce(json(401, { error: { code: 'invalid_session', message: 'expired' } }))
      .mockResolvedValueOnce(json(200, aConnection()))
    await expect(api.getConnection()).resolves.toMatchObject({ connected: true })
    expect(bridge.requestToken).toHaveBeenCalledTimes(1)
    expect(calls().map((c) => c.auth)).toEqual(['Bearer old-token', 'Bearer fresh-token'])
  })

  it('gives up after the one retry when the fresh token is refused too', async () => {
    await sessionWith('old-token')
    fetchMock.mockImplementation(async () =>
      json(401, { error: { code: 'invalid_session', message: 'The session token is missing or not valid.' } }),
    )
    const failure = await api.getMappings().catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(ApiError)
    expect(failure).toMatchObject({ status: 401, code: 'invalid_session' })
    expect(fetchMock).toHaveBeenCalledTimes(2)
  })

  it('does not retry when the host sends no new token', async () => {
    await sessionWith('old-token', () => Promise.reject(new Error('no answer')))
    fetchMock.mockImplementation(async () => json(401, { error: { code: 'invalid_session', message: 'expired' } }))
    await expect(api.getMappings()).rejects.toMatchObject({ status: 401 })
    expect(fetchMock).toHaveBeenCalledTimes(1)
  })

  it('surfaces the server error body as code and message', async () => {
    await sessionWith('t')
    fetchMock.mockResolvedValueOnce(json(422, { error: { code: 'kit_rejected_key', message: 'Kit rejected this API key.' } }))
    await expect(api.connect('bad')).rejects.toMatchObject({ status: 422, code: 'kit_rejected_key', message: 'Kit rejected this API key.' })
    const [input, init] = fetchMock.mock.calls[0]!
    expect(init?.method ?? (input as Request).method).toBe('PUT')
  })

  it('describes answers without an error body in plain words', async () => {
    await sessionWith('t')
    fetchMock.mockResolvedValueOnce(new Response('nope', { status: 404, statusText: 'Not Found' }))
    await expect(api.listDeliveries({})).rejects.toMatchObject({
      status: 404,
      code: 'http_404',
      message: 'The server answered 404 Not Found.',
    })
  })

  it('marks the session forbidden on 403 forbidden', async () => {
    const { session } = await sessionWith('t')
    fetchMock.mockResolvedValueOnce(json(403, { error: { code: 'forbidden', message: 'Only owners and admins.' } }))
    await expect(api.getConnection()).rejects.toMatchObject({ status: 403 })
    expect(session.forbidden).toBe(true)
  })

  it('sends delivery filters as query parameters and leaves out empty ones', async () => {
    await sessionWith('t')
    fetchMock.mockResolvedValueOnce(json(200, { items: [], next_cursor: null }))
    await api.listDeliveries({ member: 'ada@example.com', status: '', cursor: 'abc=', limit: 20 })
    const url = new URL(calls()[0]!.url)
    expect(url.pathname).toBe('/api/v1/deliveries')
    expect(Object.fromEntries(url.searchParams)).toEqual({ member: 'ada@example.com', cursor: 'abc=', limit: '20' })
  })
})
