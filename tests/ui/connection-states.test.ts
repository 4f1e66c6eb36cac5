import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { aConnection } from './factories.ts'
import { answerWithDefaults, button, byLabel, mountEditor, mountPanel, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const connectionSection = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === 'Kit connection')!
const unreachable = () => new ApiError(502, 'kit_unreachable', 'Kit could not be reached right now. Try again in a few minutes.')

describe('when Kit cannot be reached', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
    for (const list of [api.listTags, api.listCustomFields, api.listForms, api.listSequences])
      vi.mocked(list).mockRejectedValue(unreachable())
  })
  afterEach(() => wrapper?.unmount())

  it('the header says so instead of “Connected”, in one notice rather than one per picker', async () => {
    wrapper = await mountPanel()
    const header = textOf(connectionSection(wrapper).get('.status-line'))
    expect(header).toBe('Kit can’t be reached right now')
    expect(textOf(wrapper)).not.toContain('Connected to Kit')
    expect(wrapper.findAll('.kit-trouble')).toHaveLength(1)
    expect(textOf(wrapper)).not.toContain('could not be loaded')
  })

  it('disables tag creation with the reason, and never asks Kit to create it', async () => {
    wrapper = await mountEditor('user.signed_up')
    const input = byLabel(wrapper, 'Add tags for user.signed_up')
    await input.trigger('focus')
    await input.setValue('Founders')
    await input.trigger('input')
    const option = wrapper.findAll('[role="option"]').find((o) => o.text().includes('Founders'))!
    expect(textOf(option)).toBe('Can’t create tag “Founders” now: New tags can’t be created while Kit can’t be reached.')
    expect(option.attributes('aria-disabled')).toBe('true')
    await option.trigger('mousedown')
    await flushPromises()
    expect(wrapper.findAll('.chip').some((chip) => chip.text().includes('Founders'))).toBe(false)
    expect(textOf(wrapper.get('article[aria-label="Member signs up (user.signed_up)"] [role="alert"]'))).toBe(
      'New tags can’t be created while Kit can’t be reached.',
    )
  })

  it('turns back to “Connected” once Kit answers again', async () => {
    wrapper = await mountPanel()
    answerWithDefaults()
    await button(connectionSection(wrapper), 'Try again').trigger('click')
    await flushPromises()
    expect(textOf(connectionSection(wrapper).get('.status-line'))).toBe('Connected to Kit')
    expect(wrapper.findAll('.kit-trouble')).toHaveLength(0)
  })

  it('a Test connection that cannot reach Kit says so, not that the connection does not work', async () => {
    answerWithDefaults()
    vi.mocked(api.testConnection).mockResolvedValue({
      ok: false,
      error: { code: 'kit_unreachable', message: 'Kit could not be reached right now.' },
    })
    wrapper = await mountPanel()
    await button(wrapper, 'Test connection').trigger('click')
    await flushPromises()
    expect(textOf(wrapper)).toContain('Kit can’t be reached right now. The saved key was not rejected')
    expect(textOf(wrapper)).not.toContain('does not work')
    expect(textOf(connectionSection(wrapper).get('.status-line'))).toBe('Kit can’t be reached right now')
  })
})

describe('when Kit is busy', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] })
  })
  afterEach(() => {
    wrapper?.unmount()
    vi.useRealTimers()
  })

  it('a rate-limited Test connection says “Kit is busy, try again in N s” from Retry-After, counting down', async () => {
    vi.mocked(api.testConnection).mockRejectedValue(new ApiError(429, 'rate_limited', 'Too many Kit key checks. Try again in 17 s.', 17))
    wrapper = await mountPanel()
    await button(wrapper, 'Test connection').trigger('click')
    await flushPromises()
    expect(textOf(wrapper)).toContain('Kit is busy, try again in 17 s.')
    expect(textOf(wrapper)).not.toContain('does not work')
    expect(textOf(wrapper)).not.toContain('could not run')
    expect(button(wrapper, 'Test connection').attributes('disabled')).toBeDefined()

    await vi.advanceTimersByTimeAsync(5000)
    expect(textOf(wrapper)).toContain('Kit is busy, try again in 12 s.')
    await vi.advanceTimersByTimeAsync(13_000)
    expect(button(wrapper, 'Test connection').attributes('disabled')).toBeUndefined()
    expect(textOf(connectionSection(wrapper).get('.status-line'))).toBe('Connected to Kit')
  })

  it('Kit’s own rate limit (503 kit_rate_limited in the test result) is “busy” too', async () => {
    vi.mocked(api.testConnection).mockResolvedValue({
      ok: false,
      error: { code: 'kit_rate_limited', message: 'Kit is asking us to slow down. Try again in a minute.' },
    })
    wrapper = await mountPanel()
    await button(wrapper, 'Test connection').trigger('click')
    await flushPromises()
    expect(textOf(wrapper)).toContain('Kit is busy, try again in 60 s.')
    expect(textOf(wrapper)).not.toContain('does not work')
  })
})

describe('replacing the key', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('a rejected new key keeps saying “Connected” for the old key, with the error beside the new key field', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aConnection({ key_hint: '…a1b2' }))
    vi.mocked(api.connect).mockRejectedValue(new ApiError(422, 'kit_rejected_key', 'Kit rejected this API key (The API key is invalid).'))
    wrapper = await mountPanel()
    await button(wrapper, 'Use another key').trigger('click')
    await flushPromises()
    const input = byLabel(wrapper, 'Kit API key')
    expect(document.activeElement).toBe(input.element)

    await input.setValue('kit_other_wrong')
    await connectionSection(wrapper).get('form').trigger('submit')
    await flushPromises()
    expect(textOf(connectionSection(wrapper).get('.status-line'))).toBe('Connected to Kit')
    expect(textOf(connectionSection(wrapper).get('.facts'))).toContain('…a1b2')
    const error = connectionSection(wrapper).get(`[id="${input.attributes('aria-describedby')!.split(' ')[0]}"]`)
    expect(textOf(error)).toBe(
      'New key not saved. Kit rejected this API key (The API key is invalid). Kit stays connected with the current key (…a1b2).',
    )
    expect(document.activeElement).toBe(byLabel(wrapper, 'Kit API key').element)
  })
})
