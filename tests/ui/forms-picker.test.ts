import { type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { answerWithDefaults, byLabel, mountEditor } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

let wrapper: VueWrapper | undefined

beforeEach(() => {
  vi.resetAllMocks()
  answerWithDefaults()
})
afterEach(() => wrapper?.unmount())

describe('the forms picker', () => {
  it('says beside each forms picker why landing pages are not offered', async () => {
    wrapper = await mountEditor()
    const input = byLabel(wrapper, 'Add to forms for user.signed_up')
    const note = input.element.closest('.picker')?.parentElement?.querySelector('[data-note="forms-embedded-only"]')
    expect(note?.textContent).toMatch(/landing pages/i)
    expect(wrapper.findAll('[data-note="forms-embedded-only"]').length).toBe(wrapper.findAll('article.event').length)
  })
})
