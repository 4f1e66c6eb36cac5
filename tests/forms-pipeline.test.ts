/**
 * Forms the way Kit's own libraries use them, against the stand-in over real HTTP: listed with
 * `type=embed` plus legacy forms, joined by subscriber id (with a referrer), legacy forms through
 * `/v4/landing_pages`; and what a delivery does when Kit refuses a form (archived or deleted).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness

beforeEach(async () => {
  h = await PipelineHarness.start({ kit: { listLagMs: 0 } })
})
afterEach(async () => {
  await h.close()
})

interface Step {
  action: string
  target: string | null
  detail: string | null
}
const stepsOf = (eventId: string): Step[] => JSON.parse(h.delivery(eventId)!.steps) as Step[]

/** Connects community A with user.signed_up adding to the seeded form called `name`. */
async function mapSignUpToForm(name: string): Promise<number> {
  await h.connect()
  const form = h.kit.account(KEY).forms.find((f) => f.name === name)!
  await h.putMappings((doc) => {
    doc.events['user.signed_up'].add_to_forms = [{ id: form.id, name: form.name }]
  })
  return form.id
}

describe('a form Kit refuses', () => {
  it.each([
    ['archived', (formId: number) => h.kit.archiveForm(KEY, formId)],
    ['deleted', (formId: number) => h.kit.deleteForm(KEY, formId)],
  ])('fails the delivery at once when the form is %s, naming it and saying the person is unconfirmed in Kit', async (_, change) => {
    h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }] })
    const formId = await mapSignUpToForm('Newsletter')
    change(formId)

    const id = await h.send({ type: 'user.signed_up', memberId: 'm_ada', email: 'ada@example.com' })
    const d = await h.settled(id)
    expect(d).toMatchObject({ status: 'failed', attempts: 1 })
    expect(h.subscriber('ada@example.com')?.state).toBe('inactive')
    const steps = stepsOf(id)
    expect(steps.map((s) => [s.action, s.target])).toEqual([
      ['subscriber.created', 'ada@example.com'],
      ['tag.added', 'New Member'],
      ['subscriber.unconfirmed', 'ada@example.com'],
      ['failed', 'Newsletter'],
    ])
    expect(d.last_error).toContain('"Newsletter"')
  })

  it('says nothing of confirmation for a person Kit already holds active', async () => {
    h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }] })
    const formId = await mapSignUpToForm('Newsletter')
    await h.settled(await h.send({ type: 'user.updated', memberId: 'm_bo', email: 'bo@example.com', firstName: 'Bo' }))
    h.kit.archiveForm(KEY, formId)
    const id = await h.send({ type: 'user.signed_up', memberId: 'm_bo', email: 'bo@example.com', firstName: 'Bo' })
    expect(await h.settled(id)).toMatchObject({ status: 'failed', attempts: 1 })
    expect(stepsOf(id).map((s) => s.action)).not.toContain('subscriber.unconfirmed')
    expect(h.subscriber('bo@example.com')?.state).toBe('active')
  })

  it("forgets only what the 404 was about: the key's tag ids stay, the next delivery reads no list again", async () => {
    h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }] })
    const formId = await mapSignUpToForm('Newsletter')
    h.kit.archiveForm(KEY, formId)
    // Reads the key's tag and custom field lists, then meets the 404.
    await h.settled(
      await h.send({ type: 'user.signed_up', memberId: 'm_cy', email: 'cy@example.com', fields: { mk_subscription_plan: 'free' } }),
    )
    const mark = h.kit.requests.length
    const id = await h.send({ type: 'subscription.started', memberId: 'm_di', email: 'di@example.com' })
    expect((await h.settled(id)).status).toBe('succeeded')
    expect(h.callsSince(mark).filter((c) => c.startsWith('GET '))).toEqual([])
    expect(h.tagNames('di@example.com')).toEqual(['Active Member'])
  })

  it('adds the person once the form is back in Kit and the delivery is retried', async () => {
    h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }] })
    const formId = await mapSignUpToForm('Newsletter')
    const form = h.kit.account(KEY).forms.find((f) => f.id === formId)!
    form.archived = true
    const id = await h.send({ type: 'user.signed_up', memberId: 'm_ed', email: 'ed@example.com' })
    expect((await h.settled(id)).status).toBe('failed')
    form.archived = false
    const retry = await h.app.inject({ method: 'POST', url: `/api/v1/deliveries/${h.delivery(id)!.id}/retry`, headers: asA })
    expect(retry.statusCode).toBe(202)
    await h.settled(id, { statuses: ['succeeded'] })
    expect(form.subscribers).toEqual([h.subscriber('ed@example.com')!.id])
  })
})

describe("forms as Kit's own libraries use them", () => {
  it("adds to a form by subscriber id with the community's address as referrer, and to a sequence by id", async () => {
    h.kit.seed(KEY, { forms: [{ name: 'Newsletter' }], sequences: [{ name: 'Welcome' }] })
    await h.connect()
    const form = h.kit.account(KEY).forms[0]!
    const sequence = h.kit.account(KEY).sequences[0]!
    await h.putMappings((doc) => {
      doc.events['user.signed_up'].add_to_forms = [{ id: form.id, name: form.name }]
      doc.events['user.signed_up'].add_to_sequences = [{ id: sequence.id, name: sequence.name }]
    })
    const mark = h.kit.requests.length
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_fi', email: 'fi@example.com' }))).status).toBe('succeeded')
    const s = h.subscriber('fi@example.com')!
    expect(h.callsSince(mark).filter((c) => /forms|sequences|landing_pages/.test(c))).toEqual([
      'POST /v4/forms/:id/subscribers/:id 201',
      'POST /v4/sequences/:id/subscribers/:id 201',
    ])
    expect(form.referrers[s.id]).toBe('https://appstation.example/communities/c_alpha')
    expect(sequence.subscribers).toEqual([s.id])
  })

  it('adds to a legacy form through /v4/landing_pages, learning once that it is one', async () => {
    h.kit.seed(KEY, { forms: [{ name: 'Old embed', legacy: true }] })
    await mapSignUpToForm('Old embed')
    const legacy = h.kit.account(KEY).forms[0]!
    const first = h.kit.requests.length
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_gu', email: 'gu@example.com' }))).status).toBe('succeeded')
    expect(h.callsSince(first).filter((c) => /forms|landing_pages/.test(c))).toEqual([
      'POST /v4/forms/:id/subscribers/:id 404',
      'GET /v4/forms 200',
      'GET /v4/landing_pages 200',
      'POST /v4/landing_pages/:id/subscribers/:id 201',
    ])
    const second = h.kit.requests.length
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_hu', email: 'hu@example.com' }))).status).toBe('succeeded')
    expect(h.callsSince(second).filter((c) => /forms|landing_pages/.test(c))).toEqual(['POST /v4/landing_pages/:id/subscribers/:id 201'])
    expect(legacy.subscribers).toEqual([h.subscriber('gu@example.com')!.id, h.subscriber('hu@example.com')!.id])
  })

  it('offers embedded and legacy forms in the picker, never landing pages or Creator Profile forms', async () => {
    h.kit.seed(KEY, {
      forms: [
        { name: 'Newsletter' },
        { name: 'Landing page', format: null },
        { name: 'Creator Profile', format: null, type: 'embed' },
        { name: 'Old embed', legacy: true },
        { name: 'Old landing page', legacy: true, type: 'hosted' },
        { name: 'Retired', archived: true },
      ],
    })
    await h.connect()
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/kit/forms', headers: asA })
    expect(res.statusCode).toBe(200)
    expect(res.json().items.map((f: { name: string; archived: boolean }) => [f.name, f.archived])).toEqual([
      ['Newsletter', false],
      ['Old embed', false],
      ['Retired', true],
    ])
  })
})
