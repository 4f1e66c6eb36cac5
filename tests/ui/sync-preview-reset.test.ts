/** An import preview describes one Kit account as it was: Disconnect or a new connection forgets it. */
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { SyncPlan } from '#shared/api.ts'
import { api } from '../../ui/src/api/index.ts'
import { aConnection } from './factories.ts'
import { answerWithDefaults, button, byLabel, mountPanel, showSection } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

const plan: SyncPlan = {
  dry_run: true,
  format: 'csv',
  rows: 1,
  accepted: 1,
  subscribers: {
    create: { count: 1, examples: ['new1@example.com'] },
    update: { count: 0, examples: [] },
    unchanged: { count: 0, examples: [] },
  },
  tags_added: [],
  tags_removed: [],
  forms_added: [],
  sequences_added: [],
  unsubscribed: { count: 0, examples: [] },
  left_out_no_consent: { count: 0, examples: [] },
  refused: 0,
  refused_rows: [],
  columns: [
    { name: 'email', field: 'email' },
    { name: 'member_id', field: 'member_id' },
  ],
  estimated_kit_requests: 1,
  estimated_seconds: 1,
}

async function previewAFile(wrapper: VueWrapper): Promise<void> {
  await showSection(wrapper, 'Import')
  const input = byLabel(wrapper, 'Member file (CSV or JSON Lines)')
  const file = new File(['email,member_id\nnew1@example.com,m_1\n'], 'members.csv', { type: 'text/csv' })
  Object.defineProperty(input.element, 'files', { value: [file], configurable: true })
  await input.trigger('change')
  await button(wrapper, 'Preview').trigger('click')
  await flushPromises()
}

const previewShown = (wrapper: VueWrapper) => wrapper.find('.sync-plan table').exists()

describe('the import preview', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
    vi.mocked(api.previewSync).mockResolvedValue(plan)
    vi.mocked(api.disconnect).mockResolvedValue(undefined)
  })
  afterEach(() => wrapper?.unmount())

  it('is gone after Disconnect and connecting again, with nothing left to start', async () => {
    wrapper = await mountPanel()
    await previewAFile(wrapper)
    expect(previewShown(wrapper)).toBe(true)

    await showSection(wrapper, 'Connection')
    await button(wrapper, 'Disconnect').trigger('click')
    await button(wrapper, 'Yes, disconnect').trigger('click')
    await flushPromises()
    vi.mocked(api.connect).mockResolvedValue(aConnection({ updated_at: '2026-12-07T06:00:00.000Z' }))
    await byLabel(wrapper, 'Kit API key').setValue('kit_other_key')
    await button(wrapper, 'Connect').trigger('click')
    await flushPromises()
    await showSection(wrapper, 'Import')

    expect(wrapper.text()).toContain('Bring existing members')
    expect(previewShown(wrapper)).toBe(false)
    expect(button(wrapper, 'Preview').attributes('disabled')).toBeDefined()
    expect(button(wrapper, 'Start sync').attributes('disabled')).toBeDefined()
  })

  it('drops a preview that answers after the connection changed', async () => {
    let answer: (plan: SyncPlan) => void = () => {}
    vi.mocked(api.previewSync).mockImplementation(() => new Promise((resolve) => (answer = resolve)))
    wrapper = await mountPanel()
    await previewAFile(wrapper)
    await showSection(wrapper, 'Connection')
    await button(wrapper, 'Disconnect').trigger('click')
    await button(wrapper, 'Yes, disconnect').trigger('click')
    await flushPromises()
    answer(plan)
    vi.mocked(api.connect).mockResolvedValue(aConnection({ updated_at: '2026-12-07T06:00:00.000Z' }))
    await byLabel(wrapper, 'Kit API key').setValue('kit_other_key')
    await button(wrapper, 'Connect').trigger('click')
    await flushPromises()
    await showSection(wrapper, 'Import')
    expect(previewShown(wrapper)).toBe(false)
    expect(button(wrapper, 'Preview').text()).toBe('Preview')
  })
})
