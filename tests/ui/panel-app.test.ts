import { flushPromises, mount, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import App from '../../ui/src/App.vue'
import type { HostBridge } from '../../ui/src/host/bridge.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { aToken } from './factories.ts'

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

function bridge(overrides: Partial<HostBridge> = {}): HostBridge {
  return {
    embedded: true,
    handshake: vi.fn().mockResolvedValue({ token: aToken(), context: { cid: 'c_demo', locale: 'de', theme: 'dark' } }),
    requestToken: vi.fn().mockResolvedValue(aToken()),
    send: vi.fn(),
    dispose: vi.fn(),
    ...overrides,
  }
}

/** The whole panel, with the real API client over a faked `fetch`. */
async function start(host: HostBridge): Promise<VueWrapper> {
  const pinia = createPinia()
  setActivePinia(pinia)
  const wrapper = mount(App, { global: { plugins: [pinia] }, attachTo: document.body })
  await useSessionStore().start(host, '0.1.0')
  await flushPromises()
  return wrapper
}

describe('the panel in App Station', () => {
  let wrapper: VueWrapper | undefined
  const fetchMock = vi.fn<(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>>()

  beforeEach(() => {
    fetchMock.mockReset()
    vi.stubGlobal('fetch', fetchMock)
  })
  afterEach(() => {
    wrapper?.unmount()
    vi.unstubAllGlobals()
  })

  it('asks to be opened from App Station when it runs on its own', async () => {
    wrapper = await start(bridge({ embedded: false }))
    expect(wrapper.text()).toContain('Open this panel from App Station › Settings › Integrations › Kit.')
    expect(fetchMock).not.toHaveBeenCalled()
  })

  it('tells a member without the owner or admin role why nothing is shown', async () => {
    fetchMock.mockResolvedValue(
      json(403, { error: { code: 'forbidden', message: 'Only community owners and admins can manage the Kit integration.' } }),
    )
    wrapper = await start(bridge())
    expect(wrapper.get('[role="alert"]').text()).toContain(
      'You need to be an owner or admin of this community to manage the Kit integration.',
    )
    expect(wrapper.find('input').exists()).toBe(false)
  })

  it('follows the host’s theme and locale', async () => {
    fetchMock.mockResolvedValue(json(200, { connected: false, status: 'disconnected', key_hint: null, account: null, updated_at: null }))
    wrapper = await start(bridge())
    expect(document.documentElement.dataset.theme).toBe('dark')
    expect(document.documentElement.lang).toBe('de')
  })

  it('says so when App Station does not answer the handshake', async () => {
    wrapper = await start(bridge({ handshake: vi.fn().mockRejectedValue(new Error('App Station did not answer handshake.request.')) }))
    expect(wrapper.get('[role="alert"]').text()).toContain('App Station did not answer')
  })
})
