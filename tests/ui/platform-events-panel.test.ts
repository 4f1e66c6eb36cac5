import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { aConnection, aPlatformEvent, aPlatformEventSummary } from './factories.ts'
import { answerWithDefaults, button, hasButton, mountSection, textOf } from './mount.ts'
import { answerPlatformEvents } from './platform-events-answers.ts'

vi.mock('../../ui/src/api/index.ts')

const TITLE = 'Kit → App Station'
const sectionOf = (wrapper: VueWrapper) => wrapper.findAll('section').find((s) => s.find('h2').text() === TITLE)

/** The section is loaded on demand: wait until it is there and has read the server. */
async function section(wrapper: VueWrapper) {
  await vi.waitFor(() => {
    const found = sectionOf(wrapper)
    if (!found || found.find('.state-loading').exists()) throw new Error('the section is still loading')
  })
  await flushPromises()
  return sectionOf(wrapper)!
}

describe('the Kit → App Station section', () => {
  let wrapper: VueWrapper | undefined

  beforeEach(() => {
    vi.resetAllMocks()
    answerWithDefaults()
  })
  afterEach(() => wrapper?.unmount())

  it('tells the owner, in words, that App Station is not told and what the operator must set', async () => {
    wrapper = await mountSection('Kit → App Station')
    const text = textOf(await section(wrapper))
    expect(text).toContain('App Station is not told about changes in Kit.')
    expect(text).toContain('Ask whoever runs this server to set PLATFORM_EVENTS_URL')
    expect(text).toContain('PLATFORM_EVENTS_SECRET')
    expect(api.listPlatformEvents).not.toHaveBeenCalled()
    expect(hasButton(sectionOf(wrapper)!, 'Retry')).toBe(false)
  })

  it('shows what was sent in the last 30 days by type, and that nothing failed', async () => {
    answerPlatformEvents({
      counts: [
        { type: 'kit.subscriber.unsubscribed', state: 'sent', count: 3 },
        { type: 'kit.subscriber.bounced', state: 'pending', count: 1 },
      ],
    })
    wrapper = await mountSection('Kit → App Station')
    const found = await section(wrapper)
    expect(textOf(found)).toContain('App Station is told about changes in Kit.')
    const rows = found.findAll('tbody tr').map((r) => r.findAll('th, td').map((c) => textOf(c)))
    expect(rows).toEqual([
      ['Unsubscribed in Kit', '3', '0', '0'],
      ['Email bounced', '0', '1', '0'],
    ])
    expect(textOf(found)).toContain('Nothing failed: App Station took every event it was sent.')
    expect(api.listPlatformEvents).toHaveBeenCalledWith({ status: 'failed', limit: 50 })
  })

  it('says when nothing was sent in the last 30 days', async () => {
    answerPlatformEvents()
    wrapper = await mountSection('Kit → App Station')
    const found = await section(wrapper)
    expect(textOf(found)).toContain('Nothing to tell App Station in the last 30 days.')
    expect(found.find('table').exists()).toBe(false)
  })

  it('lists failed events with the reason in words, and Retry sends one again', async () => {
    const timedOut = aPlatformEvent({ last_error: 'timeout', member: { id: 'm_1', email: 'ada@example.com' } })
    const refused = aPlatformEvent({
      type: 'kit.subscriber.complained',
      last_error: 'http_401',
      member: { id: 'm_2', email: 'bob@example.com' },
    })
    answerPlatformEvents({ counts: [{ type: 'kit.subscriber.unsubscribed', state: 'failed', count: 2 }] }, [timedOut, refused])
    vi.mocked(api.retryPlatformEvent).mockResolvedValue(undefined)
    wrapper = await mountSection('Kit → App Station')
    const found = await section(wrapper)
    const items = found.findAll('.platform-failed li')
    expect(items.map((i) => textOf(i.find('p')))).toEqual(['Unsubscribed in Kit · ada@example.com', 'Marked as spam · bob@example.com'])
    expect(textOf(items[0]!)).toContain('App Station did not answer within 10 seconds.')
    expect(textOf(items[1]!)).toContain('App Station refused the signature (401)')

    await button(found, 'Retry: Unsubscribed in Kit for ada@example.com').trigger('click')
    await flushPromises()
    expect(api.retryPlatformEvent).toHaveBeenCalledWith(timedOut.id)
    const after = sectionOf(wrapper)!
    expect(after.findAll('.platform-failed li')).toHaveLength(1)
    expect(textOf(after)).toContain('1 event sent again: each is retried until App Station takes it.')
  })

  it('says so when a retry is refused, and keeps the event', async () => {
    const event = aPlatformEvent({ last_error: 'network' })
    answerPlatformEvents({}, [event])
    vi.mocked(api.retryPlatformEvent).mockRejectedValue(new ApiError(409, 'not_retryable', 'Only failed platform events can be sent again'))
    wrapper = await mountSection('Kit → App Station')
    const found = await section(wrapper)
    expect(textOf(found)).toContain('App Station could not be reached')
    await button(found, 'Retry').trigger('click')
    await flushPromises()
    const after = sectionOf(wrapper)!
    expect(textOf(after.get('[role="alert"]'))).toBe(
      'That event is no longer failed: it was already sent again. Choose Check again to see where it stands.',
    )
    expect(after.findAll('.platform-failed li')).toHaveLength(1)
  })

  it('shows an error with Try again when the summary cannot be read, and recovers', async () => {
    vi.mocked(api.getPlatformEventSummary)
      .mockRejectedValueOnce(new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.'))
      .mockResolvedValue(aPlatformEventSummary({ configured: false }))
    wrapper = await mountSection('Kit → App Station')
    const found = await section(wrapper)
    expect(textOf(found.get('[role="alert"]'))).toContain('What Kit told App Station could not be loaded: The server could not be reached.')
    await button(found, 'Try again').trigger('click')
    await flushPromises()
    expect(textOf(sectionOf(wrapper)!)).toContain('App Station is not told about changes in Kit.')
  })

  it('says in the header when Kit no longer accepts the saved key', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aConnection({ status: 'invalid', connected: false }))
    wrapper = await mountSection('Kit → App Station')
    expect(textOf(wrapper.get('header.panel-head'))).toContain(
      'Kit no longer accepts the saved API key: member updates are on hold until you reconnect under Connection.',
    )
  })

  it('says nothing about the key in the header while it works', async () => {
    wrapper = await mountSection('Kit → App Station')
    expect(textOf(wrapper.get('header.panel-head'))).not.toContain('no longer accepts')
  })
})
