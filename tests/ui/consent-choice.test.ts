/** The consent choice beside the connection: loaded, saved on change, with what was saved or why not. */
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { answerWithDefaults, byLabel, mountPanel, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const EVERY = 'Every member'
const ONLY = 'Only members who agreed to marketing email'

const choice = (wrapper: VueWrapper) => wrapper.get('fieldset.consent')
const radio = (wrapper: VueWrapper, label: string) => byLabel(choice(wrapper), label)
const describedBy = (wrapper: VueWrapper, label: string) =>
  textOf(wrapper.get(`[id="${radio(wrapper, label).attributes('aria-describedby')}"]`))

describe('Who becomes a Kit subscriber', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('shows the saved choice as a radio group with a plain sentence under each option', async () => {
    vi.mocked(api.getConsent).mockResolvedValue({ mode: 'marketing_consent', updated_at: '2026-12-01T08:00:00.000Z' })
    wrapper = await mountPanel()
    expect(textOf(choice(wrapper).get('legend'))).toBe('Who becomes a Kit subscriber')
    expect(radio(wrapper, EVERY).element.checked).toBe(false)
    expect(radio(wrapper, ONLY).element.checked).toBe(true)
    expect(radio(wrapper, EVERY).attributes('name')).toBe(radio(wrapper, ONLY).attributes('name'))
    expect(describedBy(wrapper, EVERY)).toMatch(/Every member of your community is added to Kit/)
    expect(describedBy(wrapper, ONLY)).toMatch(/only once App Station says they agreed/)
  })

  it('says it is loading until the setting arrives', async () => {
    let answer: (value: { mode: 'all_members'; updated_at: null }) => void = () => {}
    vi.mocked(api.getConsent).mockReturnValue(new Promise((resolve) => (answer = resolve)))
    wrapper = await mountPanel()
    expect(textOf(choice(wrapper))).toContain('Loading the consent setting…')
    answer({ mode: 'all_members', updated_at: null })
    await flushPromises()
    expect(radio(wrapper, EVERY).element.checked).toBe(true)
  })

  it('saves a new choice as soon as it is made and says it was saved', async () => {
    let finish: () => void = () => {}
    vi.mocked(api.setConsent).mockImplementation(
      (mode) => new Promise((resolve) => (finish = () => resolve({ mode, updated_at: '2026-12-07T10:00:00.000Z' }))),
    )
    wrapper = await mountPanel()
    await radio(wrapper, ONLY).setValue(true)
    expect(api.setConsent).toHaveBeenCalledWith('marketing_consent')
    expect(textOf(choice(wrapper).get('[role="status"]'))).toBe('Saving…')
    expect(choice(wrapper).attributes('aria-busy')).toBe('true')
    finish()
    await flushPromises()
    expect(textOf(choice(wrapper).get('[role="status"]'))).toBe('Saved.')
    expect(radio(wrapper, ONLY).element.checked).toBe(true)
  })

  it('sends a choice made while another is saving after it, so the last choice is the one saved', async () => {
    const finishes: (() => void)[] = []
    vi.mocked(api.setConsent).mockImplementation(
      (mode) => new Promise((resolve) => finishes.push(() => resolve({ mode, updated_at: '2026-12-07T10:00:00.000Z' }))),
    )
    wrapper = await mountPanel()
    await radio(wrapper, ONLY).setValue(true)
    await radio(wrapper, EVERY).setValue(true)
    expect(api.setConsent).toHaveBeenCalledTimes(1)
    finishes.shift()?.()
    await flushPromises()
    expect(vi.mocked(api.setConsent).mock.calls).toEqual([['marketing_consent'], ['all_members']])
    finishes.shift()?.()
    await flushPromises()
    expect(radio(wrapper, EVERY).element.checked).toBe(true)
    expect(textOf(choice(wrapper).get('[role="status"]'))).toBe('Saved.')
  })

  it('says why a choice was not saved and shows the saved one again', async () => {
    vi.mocked(api.setConsent).mockRejectedValue(new ApiError(0, 'network', 'The server could not be reached.'))
    wrapper = await mountPanel()
    await radio(wrapper, ONLY).setValue(true)
    await flushPromises()
    expect(textOf(choice(wrapper).get('[role="alert"]'))).toBe('The choice was not saved: The server could not be reached.')
    expect(radio(wrapper, EVERY).element.checked).toBe(true)
    expect(radio(wrapper, ONLY).element.checked).toBe(false)
  })

  it('offers a way to load the setting again when it could not be loaded', async () => {
    vi.mocked(api.getConsent).mockRejectedValueOnce(new ApiError(503, 'kit_busy', 'Too busy.'))
    wrapper = await mountPanel()
    expect(textOf(choice(wrapper))).toContain('The consent setting could not be loaded: Too busy.')
    await choice(wrapper).get('button').trigger('click')
    await flushPromises()
    expect(radio(wrapper, EVERY).element.checked).toBe(true)
  })
})
