/**
 * Kit's state decides what a delivery may do (contract §7, consent): the real app on SQLite, the
 * Kit stand-in and a signing receiver. Nobody Kit holds as unsubscribed, bounced or complained is
 * added to a form or sequence, or has their state changed; tags and fields are still written and
 * the delivery succeeds with a warning code; the platform is told once. A person who unsubscribed
 * subscribes again only with consent given after the plugin learnt of it, and only through a form.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { SubscriberState } from './kit-standin/server.ts'
import { waitFor } from './helpers/events.ts'
import { receiverForTests } from './helpers/platform-receiver.ts'
import { KEY, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness | undefined
const receiver = receiverForTests()
afterEach(async () => {
  await h?.close()
  h = undefined
})

async function start(): Promise<PipelineHarness> {
  h = await PipelineHarness.start({
    connected: true,
    kit: { listLagMs: 0 },
    config: { kitPollIntervalS: 3600, platformEvents: { url: receiver.url, secret: receiver.secret } },
  })
  h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }], sequences: [{ name: 'Welcome' }] })
  return h
}

/** user.signed_up adds the tag "New Member" (the default), the form and the sequence. */
async function mapFormAndSequence(harness: PipelineHarness, { form = true } = {}): Promise<void> {
  const account = harness.kit.account(KEY)
  const f = account.forms[0]!
  const s = account.sequences[0]!
  await harness.putMappings((doc) => {
    doc.events['user.signed_up'].add_to_forms = form ? [{ id: f.id, name: f.name }] : []
    doc.events['user.signed_up'].add_to_sequences = [{ id: s.id, name: s.name }]
    doc.events['subscription.started'].add_to_sequences = [{ id: s.id, name: s.name }]
  })
}

const membershipCalls = (harness: PipelineHarness, from: number) =>
  harness.callsSince(from).filter((c) => /\/(forms|sequences|landing_pages)\//.test(c) || c.includes('/unsubscribe'))

const typesFor = (memberId: string) =>
  receiver
    .accepted()
    .filter((r) => r.body.subject === `members/${memberId}`)
    .map((r) => r.body.type)

describe('a delivery for someone Kit holds as not wanting mail', () => {
  it.each([
    ['cancelled', 'kit_unsubscribed', 'kit.subscriber.unsubscribed'],
    ['bounced', 'kit_bounced', 'kit.subscriber.bounced'],
    ['complained', 'kit_complained', 'kit.subscriber.complained'],
  ] as const)(
    'writes tags and fields only for a %s person, succeeds with %s, and tells the platform once',
    async (state, code, platformType) => {
      const harness = await start()
      await mapFormAndSequence(harness)
      harness.kit.createSubscriber(KEY, { email: 'ada@example.com', firstName: 'Ada', state: state as SubscriberState })
      const mark = harness.kit.requests.length

      const first = await harness.settled(await harness.send({ type: 'user.signed_up', memberId: 'm_ada', email: 'ada@example.com' }))
      expect(first).toMatchObject({ status: 'succeeded', reason: code })
      expect(first.last_error).toMatch(/forms and sequences skipped/)
      expect(harness.tagNames('ada@example.com')).toEqual(['New Member'])
      expect(harness.subscriber('ada@example.com')!.state).toBe(state)
      // A later event for the same person: still no form, no sequence, no state change.
      const again = await harness.settled(await harness.send({ type: 'subscription.started', memberId: 'm_ada', email: 'ada@example.com' }))
      expect(again).toMatchObject({ status: 'succeeded', reason: code })
      expect(membershipCalls(harness, mark)).toEqual([])
      expect(harness.kit.account(KEY).confirmationEmails).toEqual([])

      await waitFor(() => typesFor('m_ada').length > 0, { what: 'the platform told', timeoutMs: 5000 })
      await new Promise((r) => setTimeout(r, 300))
      expect(typesFor('m_ada')).toEqual([platformType])
    },
  )

  it('reads the state of a known subscriber before a sequence, so an unsubscribe made in Kit since is respected', async () => {
    const harness = await start()
    await mapFormAndSequence(harness, { form: false })
    const started = (id: string) =>
      harness.send({ type: 'subscription.started', memberId: 'm_bo', email: 'bo@example.com', subscription: { id, plan: 'pro' } })
    expect((await harness.settled(await started('s_1'))).status).toBe('succeeded')
    expect(harness.kit.account(KEY).sequences[0]!.subscribers).toHaveLength(1)
    harness.kit.changeState(KEY, 'bo@example.com', 'cancelled')
    const mark = harness.kit.requests.length

    // Nothing to write for this member (same plan): Kit's state is read by id before the sequence.
    const later = await harness.settled(await started('s_2'))
    expect(later).toMatchObject({ status: 'succeeded', reason: 'kit_unsubscribed' })
    expect(harness.callsSince(mark)).toEqual(['GET /v4/subscribers/:id 200', 'POST /v4/tags/:id/subscribers/:id 200'])
    expect(harness.subscriber('bo@example.com')!.state).toBe('cancelled')
  })

  it('adds an active person to the form and the sequence as before, with no warning', async () => {
    const harness = await start()
    await mapFormAndSequence(harness)
    const d = await harness.settled(await harness.send({ type: 'user.signed_up', memberId: 'm_cy', email: 'cy@example.com' }))
    expect(d.status).toBe('succeeded')
    expect(d.reason ?? null).toBeNull()
    expect(harness.kit.account(KEY).forms[0]!.subscribers).toHaveLength(1)
    expect(harness.kit.account(KEY).sequences[0]!.subscribers).toHaveLength(1)
  })
})

describe('subscribing again', () => {
  async function unsubscribedMember(harness: PipelineHarness): Promise<number> {
    harness.kit.createSubscriber(KEY, { email: 'di@example.com', state: 'cancelled' })
    // The plugin learns of the unsubscribe from Kit's answer to this first delivery.
    const d = await harness.settled(await harness.send({ type: 'user.updated', memberId: 'm_di', email: 'di@example.com' }))
    expect(d.status).toBe('succeeded')
    return Date.now()
  }

  it('needs consent given after the plugin learnt of the unsubscribe', async () => {
    const harness = await start()
    await mapFormAndSequence(harness)
    const learnt = await unsubscribedMember(harness)
    const mark = harness.kit.requests.length
    const old = new Date(learnt - 60_000).toISOString()
    const d = await harness.settled(
      await harness.send({ type: 'user.signed_up', memberId: 'm_di', email: 'di@example.com', consent: { marketing: true, at: old } }),
    )
    expect(d).toMatchObject({ status: 'succeeded', reason: 'kit_unsubscribed' })
    expect(membershipCalls(harness, mark)).toEqual([])
  })

  it('with fresh consent, adds them to the mapped form only: Kit asks them to confirm; sequences wait', async () => {
    const harness = await start()
    await mapFormAndSequence(harness)
    const learnt = await unsubscribedMember(harness)
    const mark = harness.kit.requests.length
    const fresh = new Date(learnt + 1_000).toISOString()
    const d = await harness.settled(
      await harness.send({ type: 'user.signed_up', memberId: 'm_di', email: 'di@example.com', consent: { marketing: true, at: fresh } }),
    )
    expect(d).toMatchObject({ status: 'succeeded', reason: 'resubscribe_confirming' })
    expect(membershipCalls(harness, mark)).toEqual(['POST /v4/forms/:id/subscribers/:id 201'])
    expect(harness.subscriber('di@example.com')!.state).toBe('inactive')
    expect(harness.kit.account(KEY).confirmationEmails.map((e) => e.email_address)).toEqual(['di@example.com'])
    expect(harness.kit.account(KEY).sequences[0]!.subscribers).toEqual([])
  })

  it('says to map an opt-in form when fresh consent arrives and no form is mapped', async () => {
    const harness = await start()
    await mapFormAndSequence(harness, { form: false })
    const learnt = await unsubscribedMember(harness)
    const mark = harness.kit.requests.length
    const d = await harness.settled(
      await harness.send({
        type: 'user.signed_up',
        memberId: 'm_di',
        email: 'di@example.com',
        consent: { marketing: true, at: new Date(learnt + 1_000).toISOString() },
      }),
    )
    expect(d).toMatchObject({ status: 'succeeded', reason: 'resubscribe_needs_form' })
    expect(d.last_error).toContain('map an opt-in form to let members subscribe again')
    expect(membershipCalls(harness, mark)).toEqual([])
    expect(harness.subscriber('di@example.com')!.state).toBe('cancelled')
  })
})

describe('consent withdrawn', () => {
  it('unsubscribes the person in Kit, adds them to nothing, and never reports it back', async () => {
    const harness = await start()
    await mapFormAndSequence(harness, { form: false })
    expect((await harness.settled(await harness.send({ type: 'user.updated', memberId: 'm_ed', email: 'ed@example.com' }))).status).toBe(
      'succeeded',
    )
    const mark = harness.kit.requests.length
    const d = await harness.settled(
      await harness.send({
        type: 'user.signed_up',
        memberId: 'm_ed',
        email: 'ed@example.com',
        consent: { marketing: false, at: new Date().toISOString() },
      }),
    )
    expect(d.status).toBe('succeeded')
    expect(membershipCalls(harness, mark)).toEqual(['POST /v4/subscribers/:id/unsubscribe 204'])
    expect(harness.subscriber('ed@example.com')!.state).toBe('cancelled')
    // The next event learns "cancelled" from Kit's answer: the plugin's own write, not news.
    const next = await harness.settled(
      await harness.send({ type: 'user.updated', memberId: 'm_ed', email: 'ed@example.com', firstName: 'Ed' }),
    )
    expect(next.status).toBe('succeeded')
    await new Promise((r) => setTimeout(r, 500))
    expect(typesFor('m_ed')).toEqual([])
  })

  it('creates nobody for a member who never was in Kit', async () => {
    const harness = await start()
    const mark = harness.kit.requests.length
    const d = await harness.settled(
      await harness.send({ type: 'user.signed_up', memberId: 'm_fi', email: 'fi@example.com', consent: { marketing: false } }),
    )
    expect(['succeeded', 'skipped']).toContain(d.status)
    expect(harness.callsSince(mark).filter((c) => c.startsWith('POST'))).toEqual([])
    expect(harness.kit.account(KEY).subscribers).toEqual([])
  })
})
