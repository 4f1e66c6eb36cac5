/** The preview of the mappings draft: asked with Preview or after the draft rests, said in sentences, with its empty and error states. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import type { MappingPreview, MappingPreviewEvent } from '#shared/api.ts'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import MappingPreviewPanel from '../../ui/src/components/rules/MappingPreview.vue'
import { useMappingPreviewStore } from '../../ui/src/stores/mappingPreview.ts'
import { useMappingsStore } from '../../ui/src/stores/mappings.ts'
import { someMappings } from './factories.ts'
import { button, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const counts = (over: Partial<MappingPreviewEvent> = {}): MappingPreviewEvent => ({
  type: 'subscription.started',
  considered: 500,
  since: '2026-11-01T10:00:00.000Z',
  rules: [{ index: 0, matched: 312 }],
  left_out_by_filter: { saved: 0, draft: 41 },
  changes: [{ kind: 'tag', name: 'Trial', gain: 0, lose: 12 }],
  newly_skipped: 41,
  newly_sent: 0,
  ...over,
})

const answer = (events: MappingPreviewEvent[]): MappingPreview => ({
  events,
  held_since: events[0]?.since ?? null,
  ordering_simulated: false,
})

let wrapper: VueWrapper | undefined

async function mountPreview(): Promise<{ wrapper: VueWrapper; mappings: ReturnType<typeof useMappingsStore> }> {
  const pinia = createPinia()
  setActivePinia(pinia)
  const mappings = useMappingsStore()
  await mappings.load()
  wrapper = mount(MappingPreviewPanel, { global: { plugins: [pinia] }, attachTo: document.body })
  await flushPromises()
  return { wrapper, mappings }
}

const live = (w: VueWrapper) => w.get('[aria-live="polite"]')

/** A rule for annual plans on subscription.started, as the editor would add it to the draft. */
function addAnnualRule(mappings: ReturnType<typeof useMappingsStore>): void {
  mappings.draft!.events['subscription.started']!.rules = [
    {
      conditions: [{ field: 'subscription.plan', op: 'is', value: 'pro-annual' }],
      add_tags: [{ name: 'Annual' }],
      remove_tags: [],
      add_to_forms: [],
      add_to_sequences: [],
      unsubscribe: false,
    },
  ]
}

describe('the mappings preview', () => {
  beforeEach(() => {
    vi.resetAllMocks()
    vi.mocked(api.getMappings).mockResolvedValue(someMappings())
  })
  afterEach(() => {
    wrapper?.unmount()
    wrapper = undefined
    vi.useRealTimers()
  })

  it('asks for nothing until Preview is pressed, then says per event type what the draft would change', async () => {
    vi.mocked(api.previewMappings).mockResolvedValue(answer([counts()]))
    const { wrapper, mappings } = await mountPreview()
    expect(api.previewMappings).not.toHaveBeenCalled()
    addAnnualRule(mappings)

    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()

    expect(api.previewMappings).toHaveBeenCalledTimes(1)
    expect(vi.mocked(api.previewMappings).mock.calls[0]![0].events['subscription.started']!.rules).toHaveLength(1)
    expect(textOf(live(wrapper))).toContain(
      'Of the last 500 subscription starts, 312 match rule 1 (plan is pro-annual); 41 would now be left out by the filter (none with the saved mappings); 41 would no longer reach Kit; 12 members would lose the tag Trial.',
    )
    expect(textOf(live(wrapper))).toContain('the order events arrive in is not simulated')
  })

  it('says so when the community holds no recent events', async () => {
    vi.mocked(api.previewMappings).mockResolvedValue(answer([]))
    const { wrapper } = await mountPreview()
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    expect(textOf(live(wrapper))).toBe('No recent events to preview against.')
  })

  it('shows why the preview failed and tries again on request', async () => {
    vi.mocked(api.previewMappings)
      .mockRejectedValueOnce(new ApiError(400, 'invalid_mappings', 'draft.filter[0].value is required for is'))
      .mockResolvedValueOnce(
        answer([counts({ type: 'user.signed_up', rules: [], changes: [], left_out_by_filter: { saved: 0, draft: 0 }, newly_skipped: 0 })]),
      )
    const { wrapper } = await mountPreview()
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    expect(wrapper.get('[role="alert"]').text()).toContain('The preview could not be made: draft.filter[0].value is required for is')

    await button(wrapper, 'Try again').trigger('click')
    await flushPromises()
    expect(wrapper.find('[role="alert"]').exists()).toBe(false)
    expect(textOf(live(wrapper))).toContain('Of the last 500 sign-ups, nothing would change.')
  })

  it('previews again once the draft has rested, once for a burst of changes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    vi.mocked(api.previewMappings).mockResolvedValue(answer([counts()]))
    const { wrapper, mappings } = await mountPreview()
    mappings.draft!.events['user.signed_up']!.add_tags.push({ name: 'Trial' })
    await flushPromises()
    vi.advanceTimersByTime(400)
    addAnnualRule(mappings)
    await flushPromises()
    vi.advanceTimersByTime(400)
    expect(api.previewMappings).not.toHaveBeenCalled()

    vi.advanceTimersByTime(300)
    await flushPromises()
    expect(api.previewMappings).toHaveBeenCalledTimes(1)
    expect(textOf(live(wrapper))).toContain('312 match rule 1 (plan is pro-annual)')
  })

  it('asks nothing when the draft first loads after the preview is shown', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const pinia = createPinia()
    setActivePinia(pinia)
    wrapper = mount(MappingPreviewPanel, { global: { plugins: [pinia] }, attachTo: document.body })
    await useMappingsStore().load()
    await flushPromises()
    vi.advanceTimersByTime(5000)
    expect(api.previewMappings).not.toHaveBeenCalled()
    expect(button(wrapper, 'Preview').attributes('disabled')).toBeUndefined()
  })

  it('keeps the newest answer when an older one arrives late', async () => {
    let late!: (value: MappingPreview) => void
    vi.mocked(api.previewMappings)
      .mockReturnValueOnce(new Promise((resolve) => (late = resolve)))
      .mockResolvedValueOnce(answer([]))
    const { wrapper } = await mountPreview()
    await button(wrapper, 'Preview').trigger('click')
    // A second ask while the first is on its way (the button waits; a change to the draft does not).
    await useMappingPreviewStore().refresh()
    late(answer([counts()]))
    await flushPromises()
    expect(textOf(live(wrapper))).toBe('No recent events to preview against.')
  })

  it('waits for the problems the editor marks to be fixed before asking', async () => {
    const { wrapper, mappings } = await mountPreview()
    mappings.draft!.events['user.signed_up']!.add_tags.push({ name: '   ' })
    await flushPromises()
    expect(button(wrapper, 'Preview').attributes('disabled')).toBeDefined()
    expect(textOf(wrapper)).toContain('Fix the problems marked in the mappings to preview them.')
    expect(api.previewMappings).not.toHaveBeenCalled()
  })
})
