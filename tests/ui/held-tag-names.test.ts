/** Tags the mappings hold by id show under the name Kit gives them now. */
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { answerWithDefaults, button, hasButton, mountEditor, type Root } from './mount.ts'
import { someMappings } from './factories.ts'

vi.mock('../../ui/src/api/index.ts')

const card = (wrapper: VueWrapper, type: string) => wrapper.get(`article[aria-label$="(${type})"]`)
/** Each chip's name, with " (new)" when it is marked as created in Kit on first use. */
const chips = (root: Root, label: string) =>
  root
    .findAll(`ul.chips[aria-label^="${label}"] li`)
    .map((li) => `${li.get('span').text()}${li.find('.chip-new').exists() ? ' (new)' : ''}`)

let wrapper: VueWrapper | undefined

beforeEach(() => {
  vi.resetAllMocks()
  answerWithDefaults()
  // "Active Member" was created by the first subscription.started and renamed "Members" in Kit since.
  vi.mocked(api.getMappings).mockResolvedValue(
    someMappings((m) => {
      m.events['subscription.started']!.add_tags = [{ id: 7, name: 'Active Member' }]
      m.events['subscription.canceled']!.remove_tags = [{ id: 7, name: 'Active Member' }]
    }),
  )
  vi.mocked(api.listTags).mockResolvedValue([
    { id: 1, name: 'New Member' },
    { id: 7, name: 'Members' },
  ])
})
afterEach(() => wrapper?.unmount())

describe('a tag held by id', () => {
  it("shows Kit's current name, not as new, without making the mappings unsaved", async () => {
    wrapper = await mountEditor()
    expect(chips(card(wrapper, 'subscription.started'), 'Add tags')).toEqual(['Members'])
    expect(chips(card(wrapper, 'subscription.canceled'), 'Remove tags')).toEqual(['Members'])
    // A name Kit does not have is still marked new.
    expect(chips(card(wrapper, 'subscription.started'), 'Remove tags')).toEqual(['Cancelled (new)'])
    expect(hasButton(wrapper, 'Save mappings')).toBe(false)
  })

  it('removes the shown tag from the mapping it belongs to', async () => {
    wrapper = await mountEditor()
    await button(card(wrapper, 'subscription.canceled'), 'Remove Members from remove tags for subscription.canceled').trigger('click')
    await flushPromises()
    expect(chips(card(wrapper, 'subscription.canceled'), 'Remove tags')).toEqual([])
    expect(chips(card(wrapper, 'subscription.started'), 'Add tags')).toEqual(['Members'])
    await wrapper.get('form.mappings-form').trigger('submit')
    await flushPromises()
    const saved = vi.mocked(api.saveMappings).mock.calls[0]![0]
    expect(saved.events['subscription.canceled']!.remove_tags).toEqual([])
    expect(saved.events['subscription.started']!.add_tags).toEqual([{ id: 7, name: 'Active Member' }])
  })
})
