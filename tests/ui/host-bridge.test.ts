import { afterEach, describe, expect, it, vi } from 'vitest'
import { HOST_PROTOCOL } from '#shared/host-protocol.ts'
import { createHostBridge, type HostBridge } from '../../ui/src/host/bridge.ts'
import { tokenExpiry } from '../../ui/src/host/jwt.ts'
import { readAllowedOrigin } from '../../ui/src/host/origin.ts'
import { aToken } from './factories.ts'

const ORIGIN = 'http://127.0.0.1:8787'

/** A window inside a frame: its parent records what is posted; messages are delivered by hand. */
function framedWindow() {
  const parent = { postMessage: vi.fn() }
  const listeners: ((event: MessageEvent) => void)[] = []
  const win = {
    parent,
    addEventListener: (_type: string, fn: (event: MessageEvent) => void) => listeners.push(fn),
    removeEventListener: (_type: string, fn: (event: MessageEvent) => void) => listeners.splice(listeners.indexOf(fn), 1),
  }
  const deliver = (data: unknown, from: { origin?: string; source?: unknown } = {}) => {
    const event = { data, origin: from.origin ?? ORIGIN, source: 'source' in from ? from.source : parent } as MessageEvent
    for (const fn of [...listeners]) fn(event)
  }
  const lastSent = () => parent.postMessage.mock.calls.at(-1)?.[0] as { id: string; type: string; payload: unknown }
  return { win: win as unknown as Window, parent, deliver, lastSent, listeners }
}

const ack = (replyTo: string, token = 'tok.en.one') => ({
  protocol: HOST_PROTOCOL,
  id: crypto.randomUUID(),
  type: 'handshake.ack',
  replyTo,
  payload: { token, context: { cid: 'c_demo', locale: 'en', theme: 'dark' } },
})

const settled = async (promise: Promise<unknown>) => {
  let done = false
  promise.then(
    () => (done = true),
    () => (done = true),
  )
  await new Promise((r) => setTimeout(r, 0))
  return done
}

describe('host bridge', () => {
  let bridge: HostBridge | undefined
  afterEach(() => bridge?.dispose())

  it('sends handshake.request to the parent with the exact allowed origin', async () => {
    const host = framedWindow()
    bridge = createHostBridge({ win: host.win, allowedOrigin: ORIGIN })
    const handshake = bridge.handshake('1.2.3')

    expect(host.parent.postMessage).toHaveBeenCalledTimes(1)
    const [message, target] = host.parent.postMessage.mock.calls[0]!
    expect(target).toBe(ORIGIN)
    expect(message).toMatchObject({ protocol: 'appstation.v1', type: 'handshake.request', payload: { pluginVersion: '1.2.3' } })
    expect(message.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    bridge.dispose()
    await expect(handshake).rejects.toThrow(/closed/)
  })

  it('resolves the handshake with the ack that replies to it', async () => {
    const host = framedWindow()
    bridge = createHostBridge({ win: host.win, allowedOrigin: ORIGIN })
    const handshake = bridge.handshake('1.0.0')
    host.deliver(ack(host.lastSent().id))
    await expect(handshake).resolves.toEqual({ token: 'tok.en.one', context: { cid: 'c_demo', locale: 'en', theme: 'dark' } })
  })

  it('ignores messages from another origin, another window, malformed ones and unrelated replies', async () => {
    const host = framedWindow()
    bridge = createHostBridge({ win: host.win, allowedOrigin: ORIGIN })
    const handshake = bridge.handshake('1.0.0')
    const id = host.lastSent().id

    host.deliver(ack(id), { origin: 'https://evil.example' })
    host.deliver(ack(id), { source: {} })
    host.deliver(ack(id), { source: null })
    host.deliver('{"protocol":"appstation.v1"}')
    host.deliver({ ...ack(id), protocol: 'appstation.v0' })
    host.deliver({ ...ack(id), replyTo: 'someone-else' })
    host.deliver({ ...ack(id), replyTo: undefined })
    host.deliver({ ...ack(id), type: 'token.response', payload: { token: 'x' } })
    host.deliver({ ...ack(id), payload: { token: '', context: { cid: 'c', locale: 'en', theme: 'light' } } })
    host.deliver({ ...ack(id), payload: { token: 't', context: { cid: 'c', locale: 'en', theme: 'neon' } } })

    expect(await settled(handshake)).toBe(false)
    host.deliver(ack(id, 'the.real.one'))
    await expect(handshake).resolves.toMatchObject({ token: 'the.real.one' })
  })

  it('asks for a token and takes only the token.response that replies to it', async () => {
    const host = framedWindow()
    bridge = createHostBridge({ win: host.win, allowedOrigin: ORIGIN })
    const token = bridge.requestToken()
    const request = host.lastSent()
    expect(request).toMatchObject({ type: 'token.request', payload: {} })
    host.deliver({ protocol: HOST_PROTOCOL, id: 'r1', type: 'token.response', replyTo: request.id, payload: { token: 'fresh' } })
    await expect(token).resolves.toBe('fresh')
  })

  it('sends ui messages to the parent with the exact origin, never "*"', () => {
    const host = framedWindow()
    bridge = createHostBridge({ win: host.win, allowedOrigin: ORIGIN })
    bridge.send('ui.resize', { height: 640 })
    bridge.send('ui.toast', { message: 'Saved', variant: 'success' })
    bridge.send('ui.dirty', { dirty: true })
    expect(host.parent.postMessage.mock.calls.map(([m, o]) => [m.type, m.payload, o])).toEqual([
      ['ui.resize', { height: 640 }, ORIGIN],
      ['ui.toast', { message: 'Saved', variant: 'success' }, ORIGIN],
      ['ui.dirty', { dirty: true }, ORIGIN],
    ])
  })

  it('gives up when the host does not answer in time', async () => {
    vi.useFakeTimers()
    try {
      const host = framedWindow()
      bridge = createHostBridge({ win: host.win, allowedOrigin: ORIGIN, timeoutMs: 1000 })
      const handshake = bridge.handshake('1.0.0')
      vi.advanceTimersByTime(1001)
      await expect(handshake).rejects.toThrow(/did not answer/)
    } finally {
      vi.useRealTimers()
    }
  })

  it('is a no-op outside an iframe', async () => {
    const postMessage = vi.spyOn(window, 'postMessage')
    bridge = createHostBridge({ win: window, allowedOrigin: ORIGIN })
    expect(bridge.embedded).toBe(false)
    bridge.send('ui.resize', { height: 100 })
    await expect(bridge.handshake('1.0.0')).rejects.toThrow(/not embedded/)
    expect(postMessage).not.toHaveBeenCalled()
  })

  it('does not talk to the parent when no allowed origin is configured', () => {
    const host = framedWindow()
    bridge = createHostBridge({ win: host.win, allowedOrigin: null })
    expect(bridge.embedded).toBe(false)
    bridge.send('ui.dirty', { dirty: true })
    expect(host.parent.postMessage).not.toHaveBeenCalled()
    expect(host.listeners).toHaveLength(0)
  })
})

describe('allowed origin', () => {
  afterEach(() => document.head.querySelectorAll('meta[name="appstation-origin"]').forEach((m) => m.remove()))

  const setMeta = (content: string) => {
    const meta = document.createElement('meta')
    meta.name = 'appstation-origin'
    meta.content = content
    document.head.append(meta)
  }

  it('comes from the appstation-origin meta tag', () => {
    setMeta(ORIGIN)
    expect(readAllowedOrigin(document)).toBe(ORIGIN)
  })

  it('is refused when the meta tag holds more than an origin or nothing usable', () => {
    setMeta('http://127.0.0.1:8787/some/path')
    expect(readAllowedOrigin(document)).toBeNull()
    document.head.querySelector('meta[name="appstation-origin"]')?.remove()
    setMeta('*')
    expect(readAllowedOrigin(document)).toBeNull()
    document.head.querySelector('meta[name="appstation-origin"]')?.remove()
    expect(readAllowedOrigin(document)).toBeNull()
  })
})

describe('token expiry', () => {
  it('reads exp from a JWT without verifying it', () => {
    const token = aToken(90)
    expect(tokenExpiry(token)).toBe(Math.floor(Date.now() / 1000) + 90)
  })

  it('is null for something that is not a JWT', () => {
    expect(tokenExpiry('nope')).toBeNull()
    expect(tokenExpiry('a.%%%.c')).toBeNull()
  })
})
