import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Erasure } from '#shared/api.ts'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { answerWithDefaults, button, byLabel, mountEditor, mountSection, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const CHECKBOX = 'Erase from Kit as far as Kit allows'
const card = (wrapper: VueWrapper, type: string) => wrapper.get(`article[aria-label$="(${type})"]`)
const listOf = (wrapper: VueWrapper) => wrapper.find('section.erasures')

/** The list is in the Kit → App Station section, loaded on demand: wait until it has read the server. */
async function erasures(wrapper: VueWrapper) {
  await vi.waitFor(() => {
    const found = listOf(wrapper)
    if (!found.exists() || found.find('.state-loading').exists()) throw new Error('the list is still loading')
  })
  await flushPromises()
  return listOf(wrapper)
}

const anErasure = (memberId: string, subscriberId: number): Erasure => ({
  member_id: memberId,
  subscriber_id: subscriberId,
  kit_url: `https://app.kit.com/subscribers/${subscriberId}`,
  erased_at: '2026-12-07T05:00:00.000Z',
})

describe('erasure in the panel', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('offers erasure on the deletion card only, says what it does, and saves it with the mappings', async () => {
    wrapper = await mountEditor('user.deleted', 'user.updated')
    const deleted = card(wrapper, 'user.deleted')
    const checkbox = byLabel(deleted, CHECKBOX)
    expect(checkbox.element.checked).toBe(false)
    expect(textOf(deleted)).toContain("Kit's API cannot delete anyone, so they are then listed under Delete by hand in Kit")
    expect(deleted.get(`[id="${checkbox.attributes('aria-describedby')}"]`).text()).toContain('empties every mapped field')
    expect(() => byLabel(card(wrapper!, 'user.updated'), CHECKBOX)).toThrow()

    await checkbox.setValue(true)
    expect(textOf(wrapper.find('.savebar-status'))).toBe('Unsaved changes')
    await wrapper.get('form.mappings-form').trigger('submit')
    await flushPromises()
    const sent = vi.mocked(api.saveMappings).mock.calls[0]![0]
    expect(sent.events['user.deleted']!.erase).toBe(true)
    expect(sent.events['user.updated']!.erase).toBeUndefined()
  })

  it('turning erasure off again leaves nothing unsaved', async () => {
    wrapper = await mountEditor('user.deleted', 'user.updated')
    const checkbox = byLabel(card(wrapper, 'user.deleted'), CHECKBOX)
    await checkbox.setValue(true)
    await checkbox.setValue(false)
    expect(textOf(wrapper.find('.savebar-status'))).toBe('All changes saved')
  })

  it('lists each person to delete by hand with a link to their page in Kit, and Done takes them off', async () => {
    vi.mocked(api.listErasures).mockResolvedValue({ items: [anErasure('m_1', 1013), anErasure('m_2', 1014)] })
    vi.mocked(api.markErasureDone).mockResolvedValue(undefined)
    wrapper = await mountSection('Kit → App Station')
    const list = await erasures(wrapper)
    expect(list.get('h3').text()).toBe('Delete by hand in Kit')
    const items = list.findAll('li')
    expect(items.map((i) => textOf(i.get('p')))).toEqual(['Member m_1 · Kit subscriber 1013', 'Member m_2 · Kit subscriber 1014'])
    const link = items[0]!.get('a')
    expect(link.attributes('href')).toBe('https://app.kit.com/subscribers/1013')
    expect(link.attributes('target')).toBe('_blank')
    expect(link.attributes('rel')?.split(' ')).toContain('noopener')

    await button(items[0]!, 'Done : member m_1 is deleted in Kit').trigger('click')
    await flushPromises()
    expect(api.markErasureDone).toHaveBeenCalledWith('m_1')
    expect(
      listOf(wrapper)
        .findAll('li')
        .map((i) => textOf(i.get('p'))),
    ).toEqual(['Member m_2 · Kit subscriber 1014'])
  })

  it('says when nobody is left to delete', async () => {
    wrapper = await mountSection('Kit → App Station')
    expect(textOf(await erasures(wrapper))).toContain('Nobody to delete in Kit.')
  })

  it('shows that it is loading, then an error with Try again, and recovers', async () => {
    let fail: (err: unknown) => void = () => {}
    vi.mocked(api.listErasures)
      .mockImplementationOnce(() => new Promise((_resolve, reject) => (fail = reject)))
      .mockResolvedValue({ items: [anErasure('m_1', 1013)] })
    wrapper = await mountSection('Kit → App Station')
    await vi.waitFor(() => {
      if (!listOf(wrapper!).exists()) throw new Error('not there yet')
    })
    expect(textOf(listOf(wrapper))).toContain('Loading who to delete in Kit…')
    fail(new ApiError(0, 'network', 'The server could not be reached.'))
    await flushPromises()
    const list = listOf(wrapper)
    expect(textOf(list.get('[role="alert"] p'))).toBe('Who to delete in Kit could not be loaded: The server could not be reached.')
    await button(list, 'Try again').trigger('click')
    await flushPromises()
    expect(listOf(wrapper).findAll('li')).toHaveLength(1)
  })

  it('keeps the person listed and says so when Done is refused', async () => {
    vi.mocked(api.listErasures).mockResolvedValue({ items: [anErasure('m_1', 1013)] })
    vi.mocked(api.markErasureDone).mockRejectedValue(new ApiError(404, 'not_found', 'No member'))
    wrapper = await mountSection('Kit → App Station')
    const list = await erasures(wrapper)
    await button(list, 'Done : member m_1 is deleted in Kit').trigger('click')
    await flushPromises()
    expect(textOf(listOf(wrapper).get('[role="alert"]'))).toBe('That member is no longer on the list. Choose Check again to see the rest.')
    expect(listOf(wrapper).findAll('li')).toHaveLength(1)
  })
})
