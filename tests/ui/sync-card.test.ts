import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount, type DOMWrapper, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import type { Sync, SyncPlan } from '#shared/api.ts'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import SyncCard from '../../ui/src/components/connection/SyncCard.vue'
import { POLL_MS } from '../../ui/src/stores/syncs.ts'
import { aDisconnectedConnection } from './factories.ts'
import { answerWithDefaults, button, byLabel, mountPanel, settled, showSection, textOf } from './mount.ts'

vi.mock('../../ui/src/api/index.ts')

function aPlan(overrides: Partial<SyncPlan> = {}): SyncPlan {
  return {
    dry_run: true,
    format: 'csv',
    rows: 4,
    accepted: 3,
    subscribers: {
      create: { count: 2, examples: ['new1@example.com', 'new2@example.com'] },
      update: { count: 1, examples: ['old@example.com'] },
      unchanged: { count: 0, examples: [] },
    },
    tags_added: [{ name: 'Access: gold', count: 2, examples: ['new1@example.com', 'old@example.com'] }],
    tags_removed: [],
    forms_added: [],
    sequences_added: [],
    unsubscribed: { count: 0, examples: [] },
    left_out_no_consent: { count: 0, examples: [] },
    refused: 1,
    refused_rows: [{ line: 5, email: 'nope', member_id: 'm_9', reason: 'email is not an email address' }],
    columns: [
      { name: 'email', field: 'email' },
      { name: 'member_id', field: 'member_id' },
    ],
    estimated_kit_requests: 5,
    estimated_seconds: 3,
    ...overrides,
  }
}

function aSync(overrides: Partial<Sync> = {}): Sync {
  return {
    id: 'sync_1',
    status: 'running',
    format: 'csv',
    started_at: '2026-12-01T08:00:00.000Z',
    total: 200,
    done: 50,
    failed: 2,
    skipped: 3,
    remaining: 145,
    refused: 0,
    refused_rows: [],
    kit_requests: 55,
    estimated_seconds_left: 300,
    finished_at: null,
    ...overrides,
  }
}

const csvFile = (name = 'members.csv') =>
  new File(['email,member_id\na@example.com,m_1\n'], name, { type: name.endsWith('.csv') ? 'text/csv' : '' })

async function mountCard(): Promise<VueWrapper> {
  setActivePinia(createPinia())
  const wrapper = mount(SyncCard, { attachTo: document.body })
  await flushPromises()
  return wrapper
}

async function chooseFile(wrapper: VueWrapper, file: File) {
  const input = byLabel(wrapper, 'Member file (CSV or JSON Lines)')
  Object.defineProperty(input.element, 'files', { value: [file], configurable: true })
  await input.trigger('change')
}

describe('Bring existing members', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    vi.mocked(api.listSyncs).mockResolvedValue({ items: [] })
  })
  afterEach(() => {
    wrapper?.unmount()
    vi.useRealTimers()
  })

  it('previews a chosen CSV file as a table of what would change, with examples and refused rows, before anything starts', async () => {
    vi.mocked(api.previewSync).mockResolvedValue(aPlan())
    wrapper = await mountCard()
    expect(button(wrapper, 'Start sync').attributes('disabled')).toBeDefined()
    const file = csvFile()
    await chooseFile(wrapper, file)
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()

    expect(api.previewSync).toHaveBeenCalledWith(file, 'text/csv')
    expect(api.startSync).not.toHaveBeenCalled()
    const rows = wrapper.findAll('.sync-plan tbody tr').map((r) => r.findAll('th, td').map((cell) => textOf(cell)))
    expect(rows).toEqual([
      ['New in Kit', '2', 'new1@example.com, new2@example.com'],
      ['Updated', '1', 'old@example.com'],
      ['Unchanged', '0', ''],
      ['Tag “Access: gold” added', '2', 'new1@example.com, old@example.com'],
      ['Refused rows', '1', 'Line 5 (nope): email is not an email address'],
    ])
    expect(textOf(wrapper)).toContain('5 Kit requests, less than a minute at your Kit account’s rate limit.')
    expect(button(wrapper, 'Start sync').attributes('disabled')).toBeUndefined()
  })

  it('says in words how many members would be left out for want of consent, with examples', async () => {
    vi.mocked(api.previewSync).mockResolvedValue(
      aPlan({ left_out_no_consent: { count: 12, examples: ['a@example.com', 'b@example.com'] } }),
    )
    wrapper = await mountCard()
    await chooseFile(wrapper, csvFile())
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    expect(textOf(wrapper.get('.sync-plan'))).toContain(
      '12 members would be left out: they have not agreed to marketing email. For example a@example.com, b@example.com.',
    )
  })

  it('says nothing about consent when nobody would be left out', async () => {
    vi.mocked(api.previewSync).mockResolvedValue(aPlan())
    wrapper = await mountCard()
    await chooseFile(wrapper, csvFile())
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    expect(textOf(wrapper.get('.sync-plan'))).not.toContain('left out')
  })

  it("shows the file's columns with the field each fills, and previews and starts with the mapping the owner chose", async () => {
    const columns = [
      { name: 'Email Address', field: 'email' },
      { name: 'ID', field: 'member_id' },
      { name: 'Company', field: null },
    ]
    vi.mocked(api.previewSync)
      .mockResolvedValueOnce(aPlan({ columns }))
      .mockResolvedValueOnce(aPlan({ columns: columns.map((c) => (c.name === 'Company' ? { ...c, field: 'mk_company' } : c)) }))
    vi.mocked(api.startSync).mockResolvedValue(aSync())
    vi.mocked(api.getSync).mockResolvedValue(aSync())
    wrapper = await mountCard()
    const file = csvFile()
    await chooseFile(wrapper, file)
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()

    expect(byLabel(wrapper, 'Email Address').element.value).toBe('email')
    const company = byLabel(wrapper, 'Company') as unknown as DOMWrapper<HTMLSelectElement>
    expect(company.element.value).toBe('')
    expect(company.findAll('option').map((o) => o.element.value)).toContain('mk_company')

    await company.setValue('mk_company')
    expect(button(wrapper, 'Start sync').attributes('disabled')).toBeDefined()
    expect(textOf(wrapper.find('.sync-columns [role="status"]'))).toContain('Preview again')

    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    const mapping = '{"Email Address":"email","ID":"member_id","Company":"mk_company"}'
    expect(api.previewSync).toHaveBeenLastCalledWith(file, 'text/csv', mapping)
    expect(button(wrapper, 'Start sync').attributes('disabled')).toBeUndefined()

    vi.useFakeTimers()
    await button(wrapper, 'Start sync').trigger('click')
    await flushPromises()
    expect(api.startSync).toHaveBeenCalledWith(file, 'text/csv', mapping)
  })

  it('lets the owner map the columns of a file the server refused for a missing email, then preview it', async () => {
    vi.mocked(api.previewSync)
      .mockRejectedValueOnce(
        new ApiError(400, 'missing_column', 'No column of the file is mapped to email.', null, {
          columns: [
            { name: 'mail', field: null },
            { name: 'member_id', field: 'member_id' },
          ],
        }),
      )
      .mockResolvedValueOnce(
        aPlan({
          columns: [
            { name: 'mail', field: 'email' },
            { name: 'member_id', field: 'member_id' },
          ],
        }),
      )
    wrapper = await mountCard()
    await chooseFile(wrapper, csvFile())
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    expect(textOf(wrapper.find('[role="alert"]'))).toBe('The file could not be previewed: No column of the file is mapped to email.')
    await byLabel(wrapper, 'mail').setValue('email')
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    expect(api.previewSync).toHaveBeenLastCalledWith(expect.any(File), 'text/csv', '{"mail":"email","member_id":"member_id"}')
    expect(wrapper.find('[role="alert"]').exists()).toBe(false)
    expect(button(wrapper, 'Start sync').attributes('disabled')).toBeUndefined()
  })

  it('refuses a file that is neither CSV nor JSON Lines without sending it', async () => {
    wrapper = await mountCard()
    await chooseFile(wrapper, new File(['x'], 'members.xlsx'))
    expect(textOf(wrapper.find('[role="alert"]'))).toContain('Choose a .csv file')
    expect(button(wrapper, 'Preview').attributes('disabled')).toBeDefined()
  })

  it('starts the sync and shows its progress bar, counts and time left, refreshed while it runs', async () => {
    vi.mocked(api.previewSync).mockResolvedValue(aPlan())
    vi.mocked(api.startSync).mockResolvedValue(aSync({ done: 0, failed: 0, skipped: 0, remaining: 200, estimated_seconds_left: 7200 }))
    vi.mocked(api.getSync).mockResolvedValue(aSync())
    wrapper = await mountCard()
    const file = csvFile()
    await chooseFile(wrapper, file)
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    vi.useFakeTimers()
    await button(wrapper, 'Start sync').trigger('click')
    await flushPromises()
    expect(api.startSync).toHaveBeenCalledWith(file, 'text/csv', '{"email":"email","member_id":"member_id"}')
    expect(textOf(wrapper.find('.status-line'))).toBe('Sync running — 0 of 200 sent to Kit · about 2 h 0 min left')

    await vi.advanceTimersByTimeAsync(POLL_MS)
    await flushPromises()
    expect(api.getSync).toHaveBeenCalledWith('sync_1')
    expect(textOf(wrapper.find('.status-line'))).toBe('Sync running — 50 of 200 sent to Kit · 2 failed · 3 skipped · about 5 min left')
    const bar = wrapper.find('progress')
    expect(bar.attributes('aria-label')).toBe('Sync progress')
    expect(bar.attributes('max')).toBe('200')
    expect(bar.attributes('value')).toBe('55')
  })

  it('keeps the bar, full, once the sync has completed', async () => {
    vi.mocked(api.listSyncs).mockResolvedValue({
      items: [
        aSync({
          status: 'completed',
          total: 20,
          done: 20,
          failed: 0,
          skipped: 0,
          remaining: 0,
          estimated_seconds_left: null,
          finished_at: '2026-12-01T08:01:00.000Z',
        }),
      ],
    })
    wrapper = await mountCard()
    expect(textOf(wrapper.find('.status-line'))).toBe('Last sync completed — 20 of 20 sent to Kit')
    const bar = wrapper.find('progress')
    expect(bar.attributes('max')).toBe('20')
    expect(bar.attributes('value')).toBe('20')
  })

  it('pauses, resumes and, after a confirmation, cancels a running sync', async () => {
    vi.mocked(api.listSyncs).mockResolvedValue({ items: [aSync()] })
    vi.mocked(api.controlSync).mockImplementation(async (_id, verb) =>
      aSync({
        status: verb === 'pause' ? 'paused' : verb === 'resume' ? 'running' : 'cancelled',
        estimated_seconds_left: verb === 'pause' ? null : 300,
      }),
    )
    vi.mocked(api.getSync).mockResolvedValue(aSync())
    wrapper = await mountCard()
    await button(wrapper, 'Pause').trigger('click')
    await flushPromises()
    expect(api.controlSync).toHaveBeenLastCalledWith('sync_1', 'pause')
    expect(textOf(wrapper.find('.status-line'))).toBe('Sync paused — 50 of 200 sent to Kit · 2 failed · 3 skipped')

    await button(wrapper, 'Resume').trigger('click')
    await flushPromises()
    expect(api.controlSync).toHaveBeenLastCalledWith('sync_1', 'resume')

    await button(wrapper, 'Cancel sync').trigger('click')
    expect(api.controlSync).toHaveBeenCalledTimes(2)
    await button(wrapper, 'Yes, cancel the sync').trigger('click')
    await flushPromises()
    expect(api.controlSync).toHaveBeenLastCalledWith('sync_1', 'cancel')
    expect(textOf(wrapper.find('.status-line'))).toContain('Last sync cancelled')
  })

  it('shows why a sync did not start', async () => {
    vi.mocked(api.previewSync).mockResolvedValue(aPlan())
    vi.mocked(api.startSync).mockRejectedValue(
      new ApiError(413, 'payload_too_large', 'The member file is larger than 64 MiB (SYNC_MAX_BYTES).'),
    )
    wrapper = await mountCard()
    await chooseFile(wrapper, csvFile())
    await button(wrapper, 'Preview').trigger('click')
    await flushPromises()
    await button(wrapper, 'Start sync').trigger('click')
    await flushPromises()
    expect(textOf(wrapper.find('[role="alert"]'))).toBe('The sync did not start: The member file is larger than 64 MiB (SYNC_MAX_BYTES).')
  })
})

describe('the member file on the wire', () => {
  const fetchMock = vi.fn<(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>>()

  beforeEach(async () => {
    vi.resetAllMocks()
    const real = await vi.importActual<typeof import('../../ui/src/api/index.ts')>('../../ui/src/api/index.ts')
    vi.mocked(api.previewSync).mockImplementation(real.api.previewSync)
    setActivePinia(createPinia())
    vi.stubGlobal('fetch', fetchMock)
  })
  afterEach(() => vi.unstubAllGlobals())

  it('sends the chosen file as it is, with its own content type, to the dry run', async () => {
    fetchMock.mockResolvedValue(new Response(JSON.stringify(aPlan()), { status: 200, headers: { 'content-type': 'application/json' } }))
    const file = new File(['email,member_id\na@example.com,m_1\n'], 'members.csv', { type: 'text/csv' })
    await api.previewSync(file, 'text/csv')
    const [input, init] = fetchMock.mock.calls[0]!
    const req = input instanceof Request ? input : new Request(String(input), init)
    expect(req.url).toMatch(/\/api\/v1\/syncs\?dry_run=true$/)
    expect(new Headers(init?.headers ?? req.headers).get('content-type')).toBe('text/csv')
    expect(await new Response(init?.body ?? req.body).text()).toBe('email,member_id\na@example.com,m_1\n')
  })

  it('sends the column mapping as the columns query parameter, JSON, with the file', async () => {
    const real = await vi.importActual<typeof import('../../ui/src/api/index.ts')>('../../ui/src/api/index.ts')
    vi.mocked(api.startSync).mockImplementation(real.api.startSync)
    fetchMock.mockResolvedValue(new Response(JSON.stringify(aSync()), { status: 202, headers: { 'content-type': 'application/json' } }))
    const file = new File(['mail,member_id\na@example.com,m_1\n'], 'members.csv', { type: 'text/csv' })
    await api.startSync(file, 'text/csv', '{"mail":"email","member_id":"member_id"}')
    const [input, init] = fetchMock.mock.calls[0]!
    const req = input instanceof Request ? input : new Request(String(input), init)
    expect(new URL(req.url).searchParams.get('columns')).toBe('{"mail":"email","member_id":"member_id"}')
  })
})

describe('in the panel', () => {
  let wrapper: VueWrapper | undefined
  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('shows the card under Import once Kit is connected, reached from the Connection section too, and not before', async () => {
    wrapper = await mountPanel()
    expect(textOf(wrapper)).not.toContain('Bring existing members')
    const connection = wrapper.findAll('section').find((s) => s.find('h2').text() === 'Kit connection')!
    await button(connection, 'Import').trigger('click')
    await flushPromises()
    await settled(wrapper)
    const section = wrapper.findAll('section').find((s) => s.find('h2').text() === 'Import')!
    expect(section.find('h3').text()).toBe('Bring existing members')
    wrapper.unmount()

    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    wrapper = await mountPanel()
    await showSection(wrapper, 'Import')
    expect(textOf(wrapper)).not.toContain('Bring existing members')
    expect(textOf(wrapper)).toContain('Once Kit is connected you bring earlier members over here.')
  })
})
