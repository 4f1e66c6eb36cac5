import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { aConnection, aDisconnectedConnection } from './factories.ts'
import { answerWithDefaults, button, byLabel, hasButton, mountPanel, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

describe('connection section', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('shows Kit’s rejection of a key beside the field', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    vi.mocked(api.connect).mockRejectedValue(new ApiError(422, 'kit_rejected_key', 'Kit rejected this API key (The API key is invalid).'))
    wrapper = await mountPanel()
    expect(textOf(wrapper)).toContain('Where do I find my key? In Kit: Settings › Developer › API keys — create a v4 key.')

    const input = byLabel(wrapper, 'Kit API key')
    expect(input.attributes('type')).toBe('password')
    await input.setValue('kit_wrong')
    await button(wrapper, 'Connect').trigger('click')
    await wrapper.find('form').trigger('submit')
    await flushPromises()

    expect(api.connect).toHaveBeenCalledWith('kit_wrong')
    const alert = wrapper.find('[role="alert"]')
    expect(textOf(alert)).toBe('Not connected. Kit rejected this API key (The API key is invalid).')
    expect(byLabel(wrapper, 'Kit API key').attributes('aria-invalid')).toBe('true')
  })

  it('says plainly when Kit cannot be reached', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    vi.mocked(api.connect).mockRejectedValue(new ApiError(502, 'kit_unreachable', 'Kit could not be reached to check the key.'))
    wrapper = await mountPanel()
    await byLabel(wrapper, 'Kit API key').setValue('kit_key_123')
    await wrapper.find('form').trigger('submit')
    await flushPromises()
    expect(textOf(wrapper.find('[role="alert"]'))).toBe('Not connected. Kit could not be reached to check the key.')
  })

  it('asks for a plausible key before calling Kit', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    wrapper = await mountPanel()
    await wrapper.find('form').trigger('submit')
    expect(textOf(wrapper.find('[role="alert"]'))).toBe('Paste your Kit API key first.')
    await byLabel(wrapper, 'Kit API key').setValue('kit key')
    await wrapper.find('form').trigger('submit')
    expect(textOf(wrapper.find('[role="alert"]'))).toBe('That does not look like a Kit API key: paste the whole key, without spaces.')
    expect(api.connect).not.toHaveBeenCalled()
  })

  it('shows the connected account after connecting and forgets the typed key', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    vi.mocked(api.connect).mockResolvedValue(aConnection())
    wrapper = await mountPanel()
    await byLabel(wrapper, 'Kit API key').setValue('kit_test_key')
    await wrapper.find('form').trigger('submit')
    await flushPromises()

    expect(textOf(wrapper)).toContain('Connected to Kit')
    const facts = wrapper.findAll('.facts dt').map((dt) => [textOf(dt), dt.element.nextElementSibling?.textContent?.trim()])
    expect(facts.slice(0, 3)).toEqual([
      ['Account', 'Ada’s Newsletter'],
      ['Email', 'ada@example.com'],
      ['API key', '…a1b2'],
    ])
    expect(wrapper.html()).not.toContain('kit_test_key')
  })

  it('shows what the connection test found', async () => {
    vi.mocked(api.testConnection).mockResolvedValue({
      ok: true,
      account: aConnection().account!,
      latency_ms: 87,
      checks: [
        { kind: 'tag', name: 'New Member', id: 1, status: 'ok', used_by: ['user.signed_up'], message: '' },
        { kind: 'form', name: 'Gone form', id: 5, status: 'missing', used_by: ['user.signed_up'], message: 'Kit has no form 5 any more.' },
        {
          kind: 'tag',
          name: 'Access: {{access.level}}',
          id: null,
          status: 'created_on_first_use',
          used_by: ['access.granted'],
          message: '',
        },
      ],
    })
    wrapper = await mountPanel()
    await button(wrapper, 'Test connection').trigger('click')
    await flushPromises()

    const text = textOf(wrapper)
    expect(text).toContain('Connection works — Kit answered in 87 ms')
    const checks = wrapper.findAll('.check').map((li) => [textOf(li.find('.badge')), textOf(li.find('.badge + span'))])
    expect(checks).toEqual([
      ['Found in Kit', 'Tag New Member'],
      ['Missing in Kit', 'Form Gone form — Kit has no form 5 any more.'],
      ['Created on first use', 'Tag Access: {{access.level}}'],
    ])
  })

  it('explains a failed connection test in words', async () => {
    vi.mocked(api.testConnection).mockResolvedValue({
      ok: false,
      error: { code: 'kit_rejected_key', message: 'Kit no longer accepts this API key.' },
    })
    wrapper = await mountPanel()
    await button(wrapper, 'Test connection').trigger('click')
    await flushPromises()
    expect(textOf(wrapper)).toContain('The connection does not work. Kit no longer accepts this API key.')
  })

  it('makes an invalid key prominent and offers to paste a new one', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aConnection({ status: 'invalid', connected: false }))
    wrapper = await mountPanel()
    const alert = wrapper.find('.callout-error')
    expect(alert.attributes('role')).toBe('alert')
    expect(textOf(alert)).toContain('Kit no longer accepts the saved API key (…a1b2).')
    expect(textOf(alert)).toContain('paste it below to reconnect')
    expect(byLabel(wrapper, 'Kit API key').exists()).toBe(true)
    expect(hasButton(wrapper, 'Test connection')).toBe(false)
  })

  it('says so when the saved key can no longer be read, and offers to paste it again', async () => {
    const message = 'The saved Kit key can no longer be read — paste the key again.'
    vi.mocked(api.getConnection).mockResolvedValue(aConnection({ status: 'invalid', connected: false, message }))
    wrapper = await mountPanel()
    const alert = wrapper.find('.callout-error')
    expect(textOf(alert)).toContain(message)
    expect(textOf(alert)).not.toContain('Kit no longer accepts')
    expect(byLabel(wrapper, 'Kit API key').exists()).toBe(true)
  })

  it('disconnects only after confirmation', async () => {
    vi.mocked(api.disconnect).mockResolvedValue(undefined)
    wrapper = await mountPanel()
    await button(wrapper, 'Disconnect').trigger('click')
    await flushPromises()
    expect(api.disconnect).not.toHaveBeenCalled()
    expect(textOf(wrapper)).toContain('Disconnect Kit?')
    expect(document.activeElement?.textContent?.trim()).toBe('Cancel')

    await button(wrapper, 'Cancel').trigger('click')
    expect(api.disconnect).not.toHaveBeenCalled()

    await button(wrapper, 'Disconnect').trigger('click')
    await button(wrapper, 'Yes, disconnect').trigger('click')
    await flushPromises()
    expect(api.disconnect).toHaveBeenCalledTimes(1)
    expect(byLabel(wrapper, 'Kit API key').exists()).toBe(true)
  })

  it('offers to try again when the connection cannot be loaded', async () => {
    vi.mocked(api.getConnection).mockRejectedValueOnce(new ApiError(0, 'network', 'The server could not be reached.'))
    wrapper = await mountPanel()
    expect(textOf(wrapper.find('[role="alert"]'))).toContain('The connection could not be loaded: The server could not be reached.')
    await button(wrapper, 'Try again').trigger('click')
    await flushPromises()
    expect(textOf(wrapper)).toContain('Connected to Kit')
  })
})
