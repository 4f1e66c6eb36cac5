/** POST /api/v1/mappings/preview: a draft against the community's held events, through the real app, with no Kit request. */
import { afterEach, describe, expect, it } from 'vitest'
import type { Mappings, MappingPreview } from '#shared/api.ts'
import { asA, asB, PipelineHarness, type HarnessOptions } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()
let h: PipelineHarness | undefined

/** The consumer stays stopped: what is sent stays held, and Kit hears nothing but the connection check. */
async function start(options: HarnessOptions = {}): Promise<PipelineHarness> {
  h = await PipelineHarness.start({ pipeline: { autoStart: false }, ...options })
  return h
}

afterEach(async () => {
  await h?.close()
  h = undefined
})

async function saved(harness: PipelineHarness, headers = asA): Promise<Mappings> {
  return (await harness.app.inject({ method: 'GET', url: '/api/v1/mappings', headers })).json()
}

const preview = (harness: PipelineHarness, draft: unknown, headers = asA) =>
  harness.app.inject({ method: 'POST', url: '/api/v1/mappings/preview', headers, payload: { draft } })

/** The saved document with a rule for annual plans on subscription.started, and a filter leaving out one domain. */
function withRuleAndFilter(doc: Mappings): Mappings {
  const draft = structuredClone(doc)
  draft.events['subscription.started']!.rules = [
    {
      conditions: [{ field: 'subscription.plan', op: 'is', value: 'pro-annual' }],
      add_tags: [{ name: 'Annual' }],
      remove_tags: [],
      add_to_forms: [],
      add_to_sequences: [],
      unsubscribe: false,
    },
  ]
  draft.filter = [{ field: 'member.email_domain', op: 'is_not', value: 'blocked.example' }]
  return draft
}

async function sendLifecycle(harness: PipelineHarness): Promise<void> {
  await harness.send({ type: 'user.signed_up', memberId: 'm_ada' })
  await harness.send({ type: 'user.signed_up', memberId: 'm_blocked', email: 'eve@blocked.example' })
  await harness.send({ type: 'subscription.started', memberId: 'm_ada', subscription: { id: 's_1', plan: 'pro-annual', status: 'active' } })
  await harness.send({ type: 'subscription.started', memberId: 'm_bob', subscription: { id: 's_2', plan: 'Pro-Annual', status: 'active' } })
  await harness.send({ type: 'subscription.started', memberId: 'm_cy', subscription: { id: 's_3', plan: 'monthly', status: 'active' } })
}

function expectLifecycleCounts(body: MappingPreview): void {
  expect(body.ordering_simulated).toBe(false)
  expect(body.held_since).toEqual(expect.any(String))
  expect(body.events.map((e) => [e.type, e.considered])).toEqual([
    ['user.signed_up', 2],
    ['subscription.started', 3],
  ])
  const [signups, started] = body.events
  expect(signups).toMatchObject({
    rules: [],
    left_out_by_filter: { saved: 0, draft: 1 },
    newly_skipped: 1,
    newly_sent: 0,
    // The member the filter now leaves out no longer gets the sign-up's tag.
    changes: [{ kind: 'tag', name: 'New Member', gain: 0, lose: 1 }],
  })
  expect(started).toMatchObject({
    rules: [{ index: 0, matched: 2 }],
    left_out_by_filter: { saved: 0, draft: 0 },
    changes: [{ kind: 'tag', name: 'Annual', gain: 2, lose: 0 }],
    newly_skipped: 0,
    newly_sent: 0,
  })
}

describe('POST /api/v1/mappings/preview', () => {
  it('counts what the draft would change over the held events, and asks Kit nothing', async () => {
    const harness = await start({ connected: true })
    await sendLifecycle(harness)
    const before = harness.kit.requests.length
    const res = await preview(harness, withRuleAndFilter(await saved(harness)))
    expect(res.statusCode).toBe(200)
    expectLifecycleCounts(res.json())
    expect(harness.kit.requests.length).toBe(before)
  })

  it('saves nothing: the saved document stays as it was', async () => {
    const harness = await start()
    await harness.send({ type: 'user.signed_up' })
    const doc = await saved(harness)
    expect((await preview(harness, withRuleAndFilter(doc))).statusCode).toBe(200)
    expect(await saved(harness)).toEqual(doc)
  })

  it('never counts another community’s events', async () => {
    const harness = await start()
    await sendLifecycle(harness)
    await harness.send({ type: 'access.granted', communityId: 'c_bravo', access: { level: 'gold' } })
    const a = (await preview(harness, withRuleAndFilter(await saved(harness)))).json() as MappingPreview
    expect(a.events.map((e) => e.type)).not.toContain('access.granted')
    expectLifecycleCounts(a)
    const b = (await preview(harness, await saved(harness, asB), asB)).json() as MappingPreview
    expect(b.events.map((e) => [e.type, e.considered])).toEqual([['access.granted', 1]])
  })

  it('answers no event types when the community holds no events', async () => {
    const harness = await start()
    const res = await preview(harness, await saved(harness))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ events: [], held_since: null, ordering_simulated: false })
  })

  it('counts the members of an import under member.snapshot', async () => {
    const harness = await start({ connected: true })
    const upload = await harness.app.inject({
      method: 'POST',
      url: '/api/v1/syncs',
      headers: { ...asA, 'content-type': 'text/csv' },
      payload:
        'email,member_id,subscription_plan,subscription_status\nada@example.com,m_ada,pro-annual,active\nbob@example.com,m_bob,monthly,active\n',
    })
    expect(upload.statusCode).toBeLessThan(300)
    const draft = await saved(harness)
    draft.events['subscription.started']!.add_tags.push({ name: 'Paying' })
    const body = (await preview(harness, draft)).json() as MappingPreview
    expect(body.events).toEqual([
      expect.objectContaining({ type: 'member.snapshot', considered: 2, changes: [{ kind: 'tag', name: 'Paying', gain: 2, lose: 0 }] }),
    ])
  })

  it('refuses an invalid draft with 400, naming the part of the draft at fault', async () => {
    const harness = await start()
    const draft = withRuleAndFilter(await saved(harness))
    draft.events['subscription.started']!.rules![0]!.conditions[0]!.value = ' '
    const res = await preview(harness, draft)
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toEqual({
      code: 'invalid_mappings',
      message: 'draft.events.subscription.started.rules[0].conditions[0].value is required for is',
    })

    const partial = await saved(harness)
    delete partial.events['user.deleted']
    const missing = await preview(harness, partial)
    expect(missing.statusCode).toBe(400)
    expect(missing.json().error.message).toMatch(/^draft\.events is missing user\.deleted: a preview compares whole documents/)

    const shapeless = await preview(harness, { events: {} })
    expect(shapeless.statusCode).toBe(400)
    expect(shapeless.json().error).toEqual({ code: 'invalid_request', message: 'body.draft is missing "fields"' })
  })

  it('needs a session like every settings route', async () => {
    const harness = await start()
    const res = await harness.app.inject({ method: 'POST', url: '/api/v1/mappings/preview', payload: { draft: await saved(harness) } })
    expect(res.statusCode).toBe(401)
  })

  describe.skipIf(!pgUp)('on PostgreSQL', () => {
    it('counts the same, scoped to the community', async () => {
      const harness = await start({ postgres: 'kitpreview' })
      await sendLifecycle(harness)
      await harness.send({ type: 'user.signed_up', communityId: 'c_bravo' })
      const res = await preview(harness, withRuleAndFilter(await saved(harness)))
      expect(res.statusCode).toBe(200)
      expectLifecycleCounts(res.json())
    })
  })
})
