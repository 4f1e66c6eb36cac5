/** The Kit → App Station section is its own chunk, fetched when its tab is chosen: when it cannot be fetched, the panel says so in its place and offers Try again. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import { button, mountPanel, tab, textOf, answerWithDefaults } from './mount.ts'

const chunk = vi.hoisted(() => ({ failures: 1 }))

vi.mock('../../ui/src/api/index.ts')
vi.mock('../../ui/src/components/platform/PlatformEventsSection.vue', async (importOriginal) => {
  if (chunk.failures > 0) {
    chunk.failures--
    throw new Error('Failed to fetch dynamically imported module')
  }
  return importOriginal()
})

const FAILED = 'The Kit → App Station section could not be loaded'

describe('the Kit → App Station chunk', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('is not fetched before its tab is chosen, says in its place that it could not be loaded, and loads it on Try again', async () => {
    wrapper = await mountPanel()
    expect(chunk.failures).toBe(1)
    await tab(wrapper, 'Kit → App Station').trigger('click')
    await vi.waitFor(() => expect(textOf(wrapper!)).toContain(FAILED))
    expect(wrapper.get('[role="alert"]').text()).toContain('the connection may have dropped or the panel was updated')

    await button(wrapper, 'Try again').trigger('click')
    await vi.waitFor(() => expect(wrapper!.findAll('h2').map((h) => h.text())).toContain('Kit → App Station'))
    expect(textOf(wrapper)).not.toContain(FAILED)
  })
})
