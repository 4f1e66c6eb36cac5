/** The panel's sections as tabs: the keyboard moves between them, and a section's code and data come when it is first shown. */
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { emptyEventMapping } from '#shared/defaults.ts'
import { api } from '../../ui/src/api/index.ts'
import { someMappings } from './factories.ts'
import { answerWithDefaults, byLabel, mountPanel, openEvents, settled, showSection, tab, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const tabs = (wrapper: VueWrapper) => wrapper.findAll('[role="tab"]')
const selected = (wrapper: VueWrapper) => textOf(wrapper.get('[role="tab"][aria-selected="true"]'))
const panel = (wrapper: VueWrapper) => wrapper.get('[role="tabpanel"]')

async function press(wrapper: VueWrapper, key: string, init: KeyboardEventInit = {}): Promise<KeyboardEvent> {
  const target = document.activeElement ?? document.body
  const event = new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true, ...init })
  target.dispatchEvent(event)
  await flushPromises()
  await settled(wrapper)
  return event
}

let wrapper: VueWrapper | undefined

beforeEach(() => {
  vi.resetAllMocks()
  answerWithDefaults()
})
afterEach(() => wrapper?.unmount())

describe('moving between sections', () => {
  it('lists the sections as tabs, with one tab stop on the section shown, which labels its panel', async () => {
    wrapper = await mountPanel()
    expect(wrapper.get('[role="tablist"]').attributes('aria-label')).toBe('Kit settings')
    expect(tabs(wrapper).map(textOf)).toEqual(['Connection', 'Rules', 'Fields', 'Import', 'Activity', 'Kit → App Station'])
    expect(tabs(wrapper).map((t) => t.attributes('tabindex'))).toEqual(['0', '-1', '-1', '-1', '-1', '-1'])
    const current = tab(wrapper, 'Connection')
    expect(current.attributes('aria-selected')).toBe('true')
    expect(current.attributes('aria-controls')).toBe(panel(wrapper).attributes('id'))
    expect(panel(wrapper).attributes('aria-labelledby')).toBe(current.attributes('id'))
    expect(panel(wrapper).findAll('h2').map(textOf)).toEqual(['Kit connection'])
  })

  it('moves with the arrow keys, wrapping around, and to the first and last with Home and End', async () => {
    wrapper = await mountPanel()
    tab(wrapper, 'Connection').element.focus()
    await press(wrapper, 'ArrowRight')
    expect(selected(wrapper)).toBe('Rules')
    expect(document.activeElement).toBe(tab(wrapper, 'Rules').element)
    expect(panel(wrapper).findAll('h2').map(textOf)).toContain('Rules')
    expect(tab(wrapper, 'Rules').attributes('tabindex')).toBe('0')
    expect(tab(wrapper, 'Connection').attributes('tabindex')).toBe('-1')

    await press(wrapper, 'End')
    expect(selected(wrapper)).toBe('Kit → App Station')
    await press(wrapper, 'ArrowRight')
    expect(selected(wrapper)).toBe('Connection')
    await press(wrapper, 'ArrowLeft')
    expect(selected(wrapper)).toBe('Kit → App Station')
    await press(wrapper, 'Home')
    expect(selected(wrapper)).toBe('Connection')
    expect(document.activeElement).toBe(tab(wrapper, 'Connection').element)
  })

  it('reads a section’s data only when it is first shown', async () => {
    wrapper = await mountPanel()
    expect(api.listDeliveries).not.toHaveBeenCalled()
    expect(api.getMappings).not.toHaveBeenCalled()
    expect(api.getPlatformEventSummary).not.toHaveBeenCalled()
    await showSection(wrapper, 'Activity')
    expect(api.listDeliveries).toHaveBeenCalled()
    expect(api.getMappings).not.toHaveBeenCalled()
    await showSection(wrapper, 'Fields')
    expect(api.getMappings).toHaveBeenCalledTimes(1)
    await showSection(wrapper, 'Rules')
    expect(api.getMappings).toHaveBeenCalledTimes(1)
  })

  it('says under Rules and Fields that Kit must be connected first', async () => {
    vi.mocked(api.getConnection).mockResolvedValue({
      connected: false,
      status: 'disconnected',
      key_hint: null,
      account: null,
      updated_at: null,
    })
    wrapper = await mountPanel()
    await showSection(wrapper, 'Rules')
    expect(textOf(panel(wrapper))).toBe('Once Kit is connected you choose here what each member event does in Kit.')
    expect(api.getMappings).not.toHaveBeenCalled()
  })
})

describe('unsaved mappings while moving between sections', () => {
  it('keeps them, marks the tab, and saves them with Ctrl+S from another section, back in the editor', async () => {
    wrapper = await mountPanel()
    await showSection(wrapper, 'Rules')
    await openEvents(wrapper, 'user.deleted')
    await byLabel(wrapper, 'Unsubscribe the member in Kit for user.deleted').setValue(true)
    await showSection(wrapper, 'Activity')
    expect(textOf(tab(wrapper, 'Rules'))).toBe('Rules• (unsaved changes)')

    const event = await press(wrapper, 's', { ctrlKey: true })
    expect(event.defaultPrevented).toBe(true)
    expect(selected(wrapper)).toMatch(/^Rules/)
    await vi.waitFor(() => expect(api.saveMappings).toHaveBeenCalledTimes(1))
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].events['user.deleted']!.unsubscribe).toBe(true)
    await flushPromises()
    expect(textOf(wrapper.get('.savebar-status'))).toBe('All changes saved')
    expect(textOf(tab(wrapper, 'Rules'))).toBe('Rules')
  })

  it('leaves Ctrl+S to the browser outside the editor when nothing is unsaved', async () => {
    wrapper = await mountPanel()
    const event = await press(wrapper, 's', { ctrlKey: true })
    expect(event.defaultPrevented).toBe(false)
    expect(selected(wrapper)).toBe('Connection')
  })

  it('shows Rules, with the keyboard on the problem, when a save from Fields is refused for a rule', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(
      someMappings((m) => {
        m.events['user.updated'] = {
          ...emptyEventMapping(),
          rules: [{ ...emptyEventMapping(), conditions: [{ field: 'member.email_domain', op: 'is', value: 'example.com' }] }],
        }
      }),
    )
    wrapper = await mountPanel()
    await showSection(wrapper, 'Rules')
    await openEvents(wrapper, 'user.updated')
    await byLabel(wrapper, 'Value of condition 1 in rule 1 for user.updated').setValue('')
    await showSection(wrapper, 'Fields')
    await wrapper.get('form.mappings-form').trigger('submit')
    await flushPromises()
    await settled(wrapper)

    expect(api.saveMappings).not.toHaveBeenCalled()
    expect(selected(wrapper)).toMatch(/^Rules/)
    const value = byLabel(wrapper, 'Value of condition 1 in rule 1 for user.updated')
    expect(document.activeElement).toBe(value.element)
    expect(textOf(wrapper.get('.savebar [role="alert"]'))).toBe('Nothing was saved: fix the problems marked below first.')
  })
})
