import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { aConnection, aDisconnectedConnection, someMappings } from './factories.ts'
import { answerWithDefaults, button, byLabel, mountEditor, mountPanel, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const focused = () => document.activeElement as HTMLElement | null

describe('keyboard: focus is never lost', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('after Connect, focus moves to the connection’s status', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    vi.mocked(api.connect).mockResolvedValue(aConnection())
    wrapper = await mountPanel()
    await byLabel(wrapper, 'Kit API key').setValue('kit_good_key')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(focused()?.classList.contains('status-line')).toBe(true)
    expect(textOf(wrapper.get('.status-line'))).toBe('Connected to Kit')
  })

  it('the Disconnect confirmation focuses Cancel, Escape cancels it and returns to Disconnect', async () => {
    wrapper = await mountPanel()
    await button(wrapper, 'Disconnect').trigger('click')
    await flushPromises()
    expect(focused()?.textContent?.trim()).toBe('Cancel')
    await wrapper.get('[aria-label="Confirm disconnect"]').trigger('keydown', { key: 'Escape' })
    await flushPromises()
    expect(textOf(wrapper)).not.toContain('Disconnect Kit?')
    expect(focused()?.textContent?.trim()).toBe('Disconnect')
    expect(api.disconnect).not.toHaveBeenCalled()
  })

  it('after Disconnect, focus moves to the key field', async () => {
    vi.mocked(api.disconnect).mockResolvedValue(undefined)
    wrapper = await mountPanel()
    await button(wrapper, 'Disconnect').trigger('click')
    await button(wrapper, 'Yes, disconnect').trigger('click')
    await flushPromises()
    expect(focused()).toBe(byLabel(wrapper, 'Kit API key').element)
  })

  it('removing a chip moves focus to the next chip, then to the search field', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => {
        m.events['user.signed_up']!.add_tags = [
          { id: 1, name: 'New Member' },
          { id: 3, name: 'VIP' },
        ]
      }),
    )
    wrapper = await mountEditor('user.signed_up')
    await button(wrapper, 'Remove New Member from add tags for user.signed_up').trigger('click')
    await flushPromises()
    expect(focused()?.getAttribute('aria-label')).toBe('Remove VIP from add tags for user.signed_up')
    await button(wrapper, 'Remove VIP from add tags for user.signed_up').trigger('click')
    await flushPromises()
    expect(focused()).toBe(byLabel(wrapper, 'Add tags for user.signed_up').element)
  })
})
