import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { CANCELLED, POPUP_BLOCKED } from '../../ui/src/stores/kitOAuth.ts'
import { aConnection, aDisconnectedConnection } from './factories.ts'
import { answerWithDefaults, button, byLabel, hasButton, mountPanel, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

/** A popup as the panel sees it: where it was sent, whether it is closed. */
interface FakePopup {
  closed: boolean
  location: { href: string }
  close(): void
}

function fakePopup(): FakePopup {
  const popup: FakePopup = {
    closed: false,
    location: { href: 'about:blank' },
    close() {
      popup.closed = true
    },
  }
  return popup
}

/** The callback page's message, as the browser delivers it to the panel. */
function deliver(data: unknown, source: unknown, origin = window.location.origin): void {
  window.dispatchEvent(new MessageEvent('message', { data, origin, source: source as Window }))
}

const AUTHORIZE_URL = 'https://api.kit.example/v4/oauth/authorize?client_id=c&state=s'

describe('Connect with Kit in the panel', () => {
  let wrapper: VueWrapper | undefined
  let popup: FakePopup
  let open: ReturnType<typeof vi.spyOn>

  beforeEach(() => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    vi.resetAllMocks()
    answerWithDefaults()
    vi.mocked(api.getConnection).mockResolvedValue({ ...aDisconnectedConnection(), oauth_available: true })
    vi.mocked(api.startKitOAuth).mockResolvedValue({ authorize_url: AUTHORIZE_URL })
    popup = fakePopup()
    open = vi.spyOn(window, 'open').mockImplementation(() => popup as unknown as Window)
  })
  afterEach(() => {
    wrapper?.unmount()
    open.mockRestore()
    vi.useRealTimers()
  })

  it('offers Connect with Kit first and the API key form second, unchanged', async () => {
    wrapper = await mountPanel()
    const text = textOf(wrapper)
    expect(text.indexOf('Connect with Kit')).toBeLessThan(text.indexOf('Use an API key instead'))
    expect(text.indexOf('Use an API key instead')).toBeLessThan(text.indexOf('Kit API key'))
    expect(byLabel(wrapper, 'Kit API key').attributes('type')).toBe('password')
    expect(hasButton(wrapper, 'Connect')).toBe(true)
  })

  it('shows no Connect with Kit button when the server does not offer it', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    wrapper = await mountPanel()
    expect(hasButton(wrapper, 'Connect with Kit')).toBe(false)
    expect(textOf(wrapper)).not.toContain('Use an API key instead')
    expect(byLabel(wrapper, 'Kit API key').exists()).toBe(true)
  })

  it('opens the popup from the click, sends it to Kit, and reloads the connection on the callback’s word', async () => {
    wrapper = await mountPanel()
    await button(wrapper, 'Connect with Kit').trigger('click')
    expect(open).toHaveBeenCalledTimes(1)
    await flushPromises()
    expect(popup.location.href).toBe(AUTHORIZE_URL)
    expect(textOf(wrapper)).toContain('Waiting for Kit…')

    // Only the popup's own message at the panel's own origin counts.
    vi.mocked(api.getConnection).mockResolvedValue(aConnection({ kind: 'oauth', key_hint: null, oauth_available: true }))
    deliver({ type: 'kit-oauth', ok: true }, window)
    deliver({ type: 'kit-oauth', ok: true }, popup, 'https://elsewhere.example')
    await flushPromises()
    expect(textOf(wrapper)).toContain('Waiting for Kit…')
    deliver({ type: 'kit-oauth', ok: true }, popup)
    await flushPromises()
    expect(textOf(wrapper)).toContain('Connected to Kit')
    expect(textOf(wrapper)).toMatch(/Connected with\s*Connect with Kit/)
    expect(hasButton(wrapper, 'Use an API key instead')).toBe(true)
  })

  it('says what went wrong at Kit', async () => {
    wrapper = await mountPanel()
    await button(wrapper, 'Connect with Kit').trigger('click')
    await flushPromises()
    deliver({ type: 'kit-oauth', ok: false, code: 'access_denied' }, popup)
    await flushPromises()
    expect(textOf(wrapper.find('[role="alert"]'))).toBe('Kit was not given access, so nothing changed.')
  })

  it('says "Connection cancelled" when the popup is closed without a result', async () => {
    wrapper = await mountPanel()
    await button(wrapper, 'Connect with Kit').trigger('click')
    await flushPromises()
    popup.closed = true
    await vi.advanceTimersByTimeAsync(600)
    await flushPromises()
    expect(textOf(wrapper.find('[role="alert"]'))).toBe(CANCELLED)
    expect(hasButton(wrapper, 'Connect with Kit')).toBe(true)
  })

  it('asks to allow pop-ups when the browser blocks the popup', async () => {
    open.mockImplementation(() => null)
    wrapper = await mountPanel()
    await button(wrapper, 'Connect with Kit').trigger('click')
    await flushPromises()
    expect(textOf(wrapper.find('[role="alert"]'))).toBe(POPUP_BLOCKED)
    expect(api.startKitOAuth).not.toHaveBeenCalled()
  })

  it('closes the popup and shows the server’s words when the authorization cannot start', async () => {
    vi.mocked(api.startKitOAuth).mockRejectedValue(new ApiError(422, 'install_code_unknown', 'That code is unknown, used or expired.'))
    wrapper = await mountPanel()
    await button(wrapper, 'Finish an install from Kit').trigger('click')
    await byLabel(wrapper, "Code shown in Kit's App Store").setValue(' abcd-efgh ')
    await wrapper.find('form').trigger('submit')
    await flushPromises()
    expect(api.startKitOAuth).toHaveBeenCalledWith({ install_code: 'abcd-efgh' })
    expect(popup.closed).toBe(true)
    expect(textOf(wrapper.find('[role="alert"]'))).toBe('That code is unknown, used or expired.')
  })

  it('offers to connect again when Kit no longer accepts the OAuth connection', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(
      aConnection({ status: 'invalid', connected: false, kind: 'oauth', key_hint: null, oauth_available: true }),
    )
    wrapper = await mountPanel()
    expect(textOf(wrapper)).toContain('Kit no longer accepts this connection.')
    expect(hasButton(wrapper, 'Connect with Kit again')).toBe(true)
    expect(byLabel(wrapper, 'Kit API key').exists()).toBe(true)
  })
})
