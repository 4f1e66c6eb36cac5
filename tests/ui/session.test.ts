import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { HostBridge } from '../../ui/src/host/bridge.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { aToken } from './factories.ts'

function fakeBridge(overrides: Partial<HostBridge> = {}): HostBridge {
  return {
    embedded: true,
    handshake: vi.fn().mockResolvedValue({ token: aToken(120), context: { cid: 'c_demo', locale: 'en', theme: 'dark' } }),
    requestToken: vi.fn().mockResolvedValue(aToken(120)),
    send: vi.fn(),
    dispose: vi.fn(),
    ...overrides,
  }
}

describe('session store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
  })
  afterEach(() => {
    useSessionStore().stop()
    vi.useRealTimers()
  })

  it('is ready with the token and context from the handshake', async () => {
    const session = useSessionStore()
    const bridge = fakeBridge()
    await session.start(bridge, '0.1.0')
    expect(bridge.handshake).toHaveBeenCalledWith('0.1.0')
    expect(session.phase).toBe('ready')
    expect(session.context).toEqual({ cid: 'c_demo', locale: 'en', theme: 'dark' })
    expect(session.currentToken()).toMatch(/\.sig$/)
  })

  it('keeps the token out of the reactive state', async () => {
    const session = useSessionStore()
    await session.start(fakeBridge(), '0.1.0')
    expect(JSON.stringify(session.$state)).not.toContain('.sig')
  })

  it('shows the stand-alone state outside App Station', async () => {
    const session = useSessionStore()
    await session.start(fakeBridge({ embedded: false }), '0.1.0')
    expect(session.phase).toBe('standalone')
  })

  it('fails when the host does not answer the handshake', async () => {
    const session = useSessionStore()
    await session.start(
      fakeBridge({ handshake: vi.fn().mockRejectedValue(new Error('App Station did not answer handshake.request.')) }),
      '0.1.0',
    )
    expect(session.phase).toBe('failed')
    expect(session.failure).toMatch(/did not answer/)
  })

  it('asks for a new token 30 seconds before the current one expires', async () => {
    vi.useFakeTimers()
    const session = useSessionStore()
    const fresh = aToken(300)
    const bridge = fakeBridge({
      handshake: vi.fn().mockResolvedValue({ token: aToken(120), context: { cid: 'c', locale: 'en', theme: 'light' } }),
      requestToken: vi.fn().mockResolvedValue(fresh),
    })
    await session.start(bridge, '0.1.0')

    await vi.advanceTimersByTimeAsync(89_000)
    expect(bridge.requestToken).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1_500)
    expect(bridge.requestToken).toHaveBeenCalledTimes(1)
    expect(session.currentToken()).toBe(fresh)
  })

  it('shares one token request between concurrent callers', async () => {
    const session = useSessionStore()
    let answer: (token: string) => void = () => {}
    const bridge = fakeBridge({ requestToken: vi.fn(() => new Promise<string>((resolve) => (answer = resolve))) })
    await session.start(bridge, '0.1.0')
    const first = session.refreshToken()
    const second = session.refreshToken()
    answer('t.o.k')
    expect(await first).toBe('t.o.k')
    expect(await second).toBe('t.o.k')
    expect(bridge.requestToken).toHaveBeenCalledTimes(1)
  })

  it('forwards toasts, dirty state and height to the host', async () => {
    const session = useSessionStore()
    const bridge = fakeBridge()
    await session.start(bridge, '0.1.0')
    session.toast('Saved', 'success')
    session.reportDirty(true)
    session.reportHeight(812)
    expect(bridge.send).toHaveBeenCalledWith('ui.toast', { message: 'Saved', variant: 'success' })
    expect(bridge.send).toHaveBeenCalledWith('ui.dirty', { dirty: true })
    expect(bridge.send).toHaveBeenCalledWith('ui.resize', { height: 812 })
  })
})
