/**
 * Requests that change nothing in Kit are not sent, counted at the stand-in over real HTTP: no tag
 * removal for a subscriber this very delivery (or sync row) created, and no second write of fields
 * Kit already takes with a 202 when it created the subscriber.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { waitFor } from './helpers/events.ts'

let h: PipelineHarness

beforeEach(async () => {
  h = await PipelineHarness.start({ kit: { listLagMs: 0, asyncFieldsMs: 50 } })
})
afterEach(async () => {
  await h.close()
})

describe('tag removals', () => {
  it('sends none to a subscriber the delivery created, and still removes the tag from one Kit already had', async () => {
    h.kit.seed(KEY, { tags: ['Cancelled'] })
    h.kit.createSubscriber(KEY, { email: 'old@example.com', tags: ['Cancelled'] })
    await h.connect()

    const mark = h.kit.requests.length
    expect((await h.settled(await h.send({ type: 'subscription.started', memberId: 'm_new', email: 'new@example.com' }))).status).toBe(
      'succeeded',
    )
    const calls = h.callsSince(mark)
    expect(calls).toContain('POST /v4/subscribers 201')
    expect(calls.filter((c) => c.startsWith('DELETE '))).toEqual([])
    expect(h.tagNames('new@example.com')).toEqual(['Active Member'])

    const again = h.kit.requests.length
    expect((await h.settled(await h.send({ type: 'subscription.started', memberId: 'm_old', email: 'old@example.com' }))).status).toBe(
      'succeeded',
    )
    expect(h.callsSince(again)).toContain('DELETE /v4/tags/:id/subscribers/:id 204')
    expect(h.tagNames('old@example.com')).toEqual(['Active Member'])
  })

  it("remembers across a put-back for Kit's budget that the delivery created the subscriber", async () => {
    // One background request per 1.5 s window: the delivery is put back after each call it makes.
    await h.close()
    h = await PipelineHarness.start({ kit: { listLagMs: 0 }, config: { kitRateLimit: 2, kitRateWindowMs: 1500 } })
    h.kit.seed(KEY, { tags: ['Cancelled'] })
    await h.connect()
    await h.putMappings((doc) => {
      doc.fields = []
    })
    const mark = h.kit.requests.length
    const id = await h.send({ type: 'subscription.started', memberId: 'm_slow', email: 'slow@example.com' })
    expect((await h.settled(id, { timeoutMs: 20_000 })).status).toBe('succeeded')
    const calls = h.kit.requests.slice(mark)
    expect(h.callsSince(mark)).toEqual([
      'POST /v4/subscribers 201',
      'GET /v4/tags 200',
      'POST /v4/tags 201',
      'POST /v4/tags/:id/subscribers/:id 201',
    ])
    // It was put back between creating the subscriber and reading the tags.
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1000)
    expect(h.tagNames('slow@example.com')).toEqual(['Active Member'])
  }, 30_000)

  it('the import preview lists no removal for members new in Kit, and the import sends none', async () => {
    h.kit.seed(KEY, { tags: ['Cancelled'] })
    await h.connect()
    const csv = 'email,member_id,subscription_status\nn1@example.com,m_n1,active\nn2@example.com,m_n2,active\n'
    const upload = (dryRun: boolean) =>
      h.app.inject({
        method: 'POST',
        url: `/api/v1/syncs${dryRun ? '?dry_run=true' : ''}`,
        headers: { ...asA, 'content-type': 'text/csv' },
        payload: csv,
      })
    const plan = (await upload(true)).json()
    expect(plan.subscribers.create.count).toBe(2)
    expect(plan.tags_removed).toEqual([])
    expect(plan.tags_added).toEqual([{ name: 'Active Member', count: 2, examples: ['n1@example.com', 'n2@example.com'] }])

    const mark = h.kit.requests.length
    const started = await upload(false)
    expect(started.statusCode).toBe(202)
    await waitFor(async () => ((await h.app.pipeline.syncs.get('c_alpha', started.json().id)).status === 'completed' ? true : undefined), {
      what: 'the sync',
    })
    expect(h.callsSince(mark).filter((c) => c.startsWith('DELETE '))).toEqual([])
    expect(h.tagNames('n1@example.com')).toEqual(['Active Member'])
  })
})

describe('more than ten fields', () => {
  const labels = Array.from({ length: 11 }, (_, i) => `Extra ${i}`)
  const fields = Object.fromEntries(labels.map((_, i) => [`mk_extra_${i}`, `v${i}`]))
  const inKit = Object.fromEntries(labels.map((_, i) => [`extra_${i}`, `v${i}`]))

  async function mapElevenFields() {
    h.kit.seed(KEY, { customFields: labels })
    await h.connect()
    await h.putMappings((doc) => {
      for (const type of Object.keys(doc.events))
        doc.events[type] = { add_tags: [], remove_tags: [], add_to_forms: [], add_to_sequences: [], unsubscribe: false }
      doc.fields = labels.map((label, i) => ({ source: `mk_extra_${i}`, kit_field: { key: `extra_${i}`, label } }))
    })
  }

  it('writes them once when Kit creates the subscriber with a 202: no PUT of the same fields', async () => {
    await mapElevenFields()
    const mark = h.kit.requests.length
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_many', email: 'many@example.com', fields }))).status).toBe(
      'succeeded',
    )
    expect(h.callsSince(mark)).toEqual(['GET /v4/custom_fields 200', 'POST /v4/subscribers 202'])
    await waitFor(() => (h.subscriber('many@example.com')?.fields.extra_10 === 'v10' ? true : undefined), {
      what: 'the fields Kit applies after its 202',
    })
    expect(h.subscriber('many@example.com')?.fields).toEqual(inKit)
  })

  it('still writes them with a PUT to a subscriber Kit already had (its 202 keeps their old values)', async () => {
    await mapElevenFields()
    h.kit.createSubscriber(KEY, { email: 'had@example.com' }).created_at = '2026-01-01T00:00:00Z'
    const mark = h.kit.requests.length
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_had', email: 'had@example.com', fields }))).status).toBe(
      'succeeded',
    )
    expect(h.callsSince(mark)).toEqual(['GET /v4/custom_fields 200', 'POST /v4/subscribers 202', 'PUT /v4/subscribers/:id 200'])
    expect(h.subscriber('had@example.com')?.fields).toEqual(inKit)
  })
})
