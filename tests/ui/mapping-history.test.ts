/** The History list of the mappings: what a person sees and does, with the API module faked. */
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { MappingVersion } from '#shared/api.ts'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import MappingHistory from '../../ui/src/components/rules/MappingHistory.vue'
import { useMappingsStore } from '../../ui/src/stores/mappings.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { aToken, someMappings } from './factories.ts'
import { button, hasButton, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const aVersion = (version: number, overrides: Partial<MappingVersion> = {}): MappingVersion => ({
  version,
  saved_by: 'u_ada',
  saved_at: `2026-11-2${version}T10:00:00.000Z`,
  change: `change ${version}`,
  restored_from: null,
  ...overrides,
})

const VERSIONS = [
  aVersion(2, { saved_by: 'u_ben', change: 'Member account is deleted now unsubscribes' }),
  aVersion(1, { change: 'added tag "VIP" to Member signs up' }),
  aVersion(0, { saved_by: null, change: 'the defaults, before the first save' }),
]
/** The mappings in force: version 2's. */
const inForce = () =>
  someMappings((m) => {
    m.events['user.signed_up']!.add_tags.push({ name: 'VIP' })
    m.events['user.deleted'] = { add_tags: [], remove_tags: [], add_to_forms: [], add_to_sequences: [], unsubscribe: true }
  })

const when = (iso: string) => new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso))

let wrapper: VueWrapper | undefined

async function mountHistory(): Promise<VueWrapper> {
  const pinia = createPinia()
  setActivePinia(pinia)
  useSessionStore().setToken(aToken(), { cid: 'c_demo', locale: 'en-GB', theme: 'light' })
  wrapper = mount(MappingHistory, { global: { plugins: [pinia] }, attachTo: document.body })
  await flushPromises()
  return wrapper
}

const rows = (w: VueWrapper) => w.findAll('li.version')
const confirmation = (w: VueWrapper) => w.find('[role="group"]')

beforeEach(() => {
  vi.resetAllMocks()
  vi.mocked(api.listMappingVersions).mockResolvedValue({ items: VERSIONS, next_cursor: null })
  vi.mocked(api.getMappings).mockResolvedValue(inForce())
  vi.mocked(api.getMappingVersion).mockResolvedValue(someMappings())
  vi.mocked(api.restoreMappingVersion).mockImplementation(async () => someMappings())
  vi.mocked(api.saveMappings).mockImplementation(async (doc) => doc)
})
afterEach(() => {
  wrapper?.unmount()
  wrapper = undefined
})

describe('the mappings history', () => {
  it('says it is loading, then lists each save newest first: version, when in the reader’s locale, who, and the change in words', async () => {
    let answer!: (page: { items: MappingVersion[]; next_cursor: null }) => void
    vi.mocked(api.listMappingVersions).mockReturnValue(new Promise((resolve) => (answer = resolve)))
    const w = await mountHistory()
    expect(textOf(w)).toContain('Loading the history…')
    answer({ items: VERSIONS, next_cursor: null })
    await flushPromises()

    expect(rows(w).map((row) => row.findAll('p').map(textOf))).toEqual([
      [`Version 2 · ${when(VERSIONS[0]!.saved_at)} · by u_ben · in force`, 'Member account is deleted now unsubscribes'],
      [`Version 1 · ${when(VERSIONS[1]!.saved_at)} · by u_ada`, 'added tag "VIP" to Member signs up'],
      [`Version 0 · ${when(VERSIONS[2]!.saved_at)}`, 'the defaults, before the first save'],
    ])
    expect(rows(w).map((row) => hasButton(row, 'Restore'))).toEqual([false, true, true])
    expect(rows(w)[0]!.find('time').attributes('datetime')).toBe(VERSIONS[0]!.saved_at)
  })

  it('says which version a restore restored', async () => {
    vi.mocked(api.listMappingVersions).mockResolvedValue({
      items: [aVersion(3, { restored_from: 0, change: 'removed tag "VIP" from Member signs up' }), ...VERSIONS],
      next_cursor: null,
    })
    const w = await mountHistory()
    expect(textOf(rows(w)[0]!)).toContain('removed tag "VIP" from Member signs up (restored version 0)')
  })

  it('says "No saves yet" when the mappings were never saved', async () => {
    vi.mocked(api.listMappingVersions).mockResolvedValue({ items: [], next_cursor: null })
    const w = await mountHistory()
    expect(textOf(w.get('[role="status"]'))).toBe('No saves yet')
    expect(rows(w)).toHaveLength(0)
  })

  it('says why the history could not be loaded, and loads it on Try again', async () => {
    vi.mocked(api.listMappingVersions).mockRejectedValueOnce(new ApiError(0, 'network', 'The server could not be reached.'))
    const w = await mountHistory()
    expect(textOf(w.get('[role="alert"] p'))).toBe('The history could not be loaded: The server could not be reached.')
    await button(w, 'Try again').trigger('click')
    await flushPromises()
    expect(rows(w)).toHaveLength(3)
  })

  it('shows older versions a page at a time', async () => {
    vi.mocked(api.listMappingVersions)
      .mockResolvedValueOnce({ items: VERSIONS.slice(0, 2), next_cursor: 'older' })
      .mockResolvedValueOnce({ items: VERSIONS.slice(2), next_cursor: null })
    const w = await mountHistory()
    expect(rows(w)).toHaveLength(2)
    await button(w, 'Show older versions').trigger('click')
    await flushPromises()
    expect(api.listMappingVersions).toHaveBeenLastCalledWith({ cursor: 'older', limit: 20 })
    expect(rows(w).map((r) => r.find('strong').text())).toEqual(['Version 2', 'Version 1', 'Version 0'])
    expect(hasButton(w, 'Show older versions')).toBe(false)
  })
})

describe('restoring a version', () => {
  it('first says what restoring would change compared with the mappings in force, with Cancel focused', async () => {
    const w = await mountHistory()
    await button(w, 'Restore version 0').trigger('click')
    await flushPromises()

    expect(api.getMappingVersion).toHaveBeenCalledWith(0)
    expect(confirmation(w).attributes('aria-label')).toBe('Confirm restoring version 0')
    expect(confirmation(w).findAll('li').map(textOf)).toEqual([
      'removed tag "VIP" from Member signs up',
      'Member account is deleted no longer unsubscribes',
    ])
    expect(document.activeElement?.textContent?.trim()).toBe('Cancel')
    expect(api.restoreMappingVersion).not.toHaveBeenCalled()
  })

  it('says when restoring would change nothing', async () => {
    vi.mocked(api.getMappingVersion).mockResolvedValue(inForce())
    const w = await mountHistory()
    await button(w, 'Restore version 1').trigger('click')
    await flushPromises()
    expect(textOf(confirmation(w))).toContain('Restoring version 1 changes nothing: it holds the mappings in force.')
  })

  it('restores it, loads the mappings and the history again, and says so', async () => {
    const w = await mountHistory()
    const mappings = useMappingsStore()
    const restored = aVersion(3, { saved_by: 'u_1', restored_from: 0, change: 'removed tag "VIP" from Member signs up' })
    await button(w, 'Restore version 0').trigger('click')
    await flushPromises()
    vi.mocked(api.listMappingVersions).mockResolvedValue({ items: [restored, ...VERSIONS], next_cursor: null })
    vi.mocked(api.getMappings).mockClear()

    await button(w, 'Restore version 0').trigger('click')
    await flushPromises()

    expect(api.restoreMappingVersion).toHaveBeenCalledWith(0)
    expect(api.getMappings).toHaveBeenCalledTimes(1)
    expect(mappings.saved).not.toBeNull()
    expect(api.listMappingVersions).toHaveBeenCalledTimes(2)
    expect(confirmation(w).exists()).toBe(false)
    expect(textOf(rows(w)[0]!)).toContain('Version 3')
    const live = w.get('[aria-live="polite"]')
    expect(textOf(live)).toBe('Version 0 restored as version 3.')
    expect(document.activeElement).toBe(live.element)
  })

  it('cancels with Escape, giving the focus back to that version’s Restore', async () => {
    const w = await mountHistory()
    await button(w, 'Restore version 1').trigger('click')
    await flushPromises()
    await confirmation(w).trigger('keydown', { key: 'Escape' })
    await flushPromises()
    expect(confirmation(w).exists()).toBe(false)
    expect(document.activeElement).toBe(button(w, 'Restore version 1').element)
    expect(api.restoreMappingVersion).not.toHaveBeenCalled()
  })

  it('warns that unsaved changes in the editor are discarded', async () => {
    const w = await mountHistory()
    const mappings = useMappingsStore()
    await mappings.load()
    mappings.setUnsubscribe('user.updated', true)
    await button(w, 'Restore version 1').trigger('click')
    await flushPromises()
    expect(textOf(confirmation(w))).toContain('Your unsaved changes to the mappings are discarded.')
  })

  it('says why nothing was restored and keeps the question open', async () => {
    vi.mocked(api.restoreMappingVersion).mockRejectedValue(
      new ApiError(404, 'not_found', 'No saved version 0 of the mappings in this community'),
    )
    const w = await mountHistory()
    await button(w, 'Restore version 0').trigger('click')
    await flushPromises()
    await button(w, 'Restore version 0').trigger('click')
    await flushPromises()
    expect(textOf(confirmation(w).get('[role="alert"]'))).toBe('Nothing was restored: No saved version 0 of the mappings in this community')
    expect(hasButton(confirmation(w), 'Cancel')).toBe(true)
  })

  it('says when the version could not be compared, and offers only Cancel', async () => {
    vi.mocked(api.getMappingVersion).mockRejectedValue(new ApiError(0, 'network', 'The server could not be reached.'))
    const w = await mountHistory()
    await button(w, 'Restore version 1').trigger('click')
    await flushPromises()
    expect(textOf(confirmation(w).get('[role="alert"]'))).toBe(
      'Version 1 could not be compared with the mappings in force: The server could not be reached.',
    )
    expect(button(confirmation(w), 'Restore version 1').element.disabled).toBe(true)
  })
})

describe('following the editor', () => {
  it('loads the history again after the mappings are saved', async () => {
    const w = await mountHistory()
    const mappings = useMappingsStore()
    await mappings.load()
    await flushPromises()
    expect(api.listMappingVersions).toHaveBeenCalledTimes(1)
    mappings.setUnsubscribe('user.updated', true)
    await mappings.save()
    await flushPromises()
    expect(api.listMappingVersions).toHaveBeenCalledTimes(2)
    expect(rows(w)).toHaveLength(3)
  })
})
