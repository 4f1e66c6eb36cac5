/**
 * Rules and the member filter in the pipeline, over real HTTP against the Kit stand-in: the same
 * decision in live events, an import (member.snapshot) and a replay of what was recorded while
 * disconnected; a member the filter leaves out costs no Kit request. And the API names what is
 * wrong in a rule or the filter precisely.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Mappings, Rule } from '#shared/api.ts'
import type { Condition } from '#shared/conditions.ts'
import { emptyEventMapping } from '#shared/defaults.ts'
import { asA, asB, KEY, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const annualRule: Rule = {
  ...emptyEventMapping(),
  conditions: [{ field: 'subscription.plan', op: 'is', value: 'pro-annual' }],
  add_tags: [{ name: 'Annual' }],
}
const notTestAccounts: Condition[] = [{ field: 'member.email_domain', op: 'is_not', value: 'test.example.com' }]

function withRules(doc: Mappings): void {
  doc.events['subscription.started'] = { ...doc.events['subscription.started']!, rules: [annualRule] }
  doc.filter = notTestAccounts
}

async function start(connected = true): Promise<PipelineHarness> {
  h = await PipelineHarness.start({ connected, kit: { listLagMs: 0 } })
  return h
}

const started = (harness: PipelineHarness, memberId: string, email: string, plan: string) =>
  harness.send({ type: 'subscription.started', memberId, email, subscription: { id: `s_${memberId}`, plan } })

describe('rules in live events', () => {
  it('adds "Annual" only when the plan is pro-annual', async () => {
    const harness = await start()
    await harness.putMappings(withRules)
    expect((await harness.settled(await started(harness, 'm_a', 'a@example.com', 'pro-annual'))).status).toBe('succeeded')
    expect((await harness.settled(await started(harness, 'm_b', 'b@example.com', 'pro-monthly'))).status).toBe('succeeded')
    expect(harness.tagNames('a@example.com')).toEqual(['Active Member', 'Annual'])
    expect(harness.tagNames('b@example.com')).toEqual(['Active Member'])
  })

  it('leaves out a member the filter does not match, with no Kit request, and says why', async () => {
    const harness = await start()
    await harness.putMappings(withRules)
    const mark = harness.kit.requests.length
    const d = await harness.settled(await started(harness, 'm_qa', 'qa@test.example.com', 'pro-annual'))
    expect(d).toMatchObject({ status: 'skipped', reason: 'filtered_out', kit_requests: 0 })
    expect(d.last_error).toMatch(/left as it is/)
    expect(harness.kit.requests.length).toBe(mark)
  })
})

describe('rules in an import and a replay', () => {
  it('applies the rules of the events a snapshot implies, and the filter, in an import', async () => {
    const harness = await start()
    await harness.putMappings(withRules)
    const res = await harness.app.inject({
      method: 'POST',
      url: '/api/v1/syncs',
      headers: { ...asA, 'content-type': 'text/csv' },
      payload: [
        'email,member_id,subscription_plan,subscription_status',
        'yearly@example.com,m_y,pro-annual,active',
        'monthly@example.com,m_m,pro-monthly,active',
        'qa@test.example.com,m_qa,pro-annual,active',
        '',
      ].join('\n'),
    })
    expect(res.statusCode).toBe(202)
    const id = (res.json() as { id: string }).id
    for (let i = 0; i < 200; i++) {
      const sync = await harness.app.pipeline.syncs.get('c_alpha', id)
      if (sync.status === 'completed') break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(harness.tagNames('yearly@example.com')).toEqual(['Active Member', 'Annual'])
    expect(harness.tagNames('monthly@example.com')).toEqual(['Active Member'])
    expect(harness.kit.account(KEY).subscribers.map((s) => s.email_address)).not.toContain('qa@test.example.com')
  })

  it('applies them to events recorded while disconnected, when they are sent again', async () => {
    const harness = await start(false)
    await harness.putMappings(withRules)
    const yearlyId = await started(harness, 'm_y', 'yearly@example.com', 'pro-annual')
    const qaId = await started(harness, 'm_qa', 'qa@test.example.com', 'pro-annual')
    const yearly = await harness.settled(yearlyId)
    const qa = await harness.settled(qaId)
    expect([yearly.reason, qa.reason]).toEqual(['not_connected', 'not_connected'])
    await harness.connect()
    const replay = await harness.app.inject({
      method: 'POST',
      url: '/api/v1/deliveries/retry',
      headers: asA,
      payload: { status: 'skipped', reason: 'not_connected' },
    })
    expect(replay.statusCode).toBe(202)
    expect(await harness.settled(yearlyId, { statuses: ['succeeded'] })).toMatchObject({ status: 'succeeded' })
    expect(await harness.settled(qaId, { statuses: ['skipped'] })).toMatchObject({ reason: 'filtered_out' })
    expect(harness.tagNames('yearly@example.com')).toEqual(['Active Member', 'Annual'])
  })
})

describe('saving rules and a filter', () => {
  const patch = (payload: unknown, headers = asA) =>
    h!.app.inject({ method: 'PATCH', url: '/api/v1/mappings', headers, payload: payload as object })
  const ruleWith = (condition: Record<string, unknown>) => ({
    events: { 'subscription.started': { ...emptyEventMapping(), rules: [{ ...annualRule, conditions: [condition] }] } },
  })

  it.each([
    [
      { field: 'member.plan', op: 'is', value: 'x' },
      /events\.subscription\.started\.rules\[0\]\.conditions\[0\]\.field "member\.plan" is not a field/,
    ],
    [{ field: 'subscription.plan', op: 'is_one_of', values: [] }, /rules\[0\]\.conditions\[0\]\.values must list at least one value/],
    [{ field: 'subscription.plan', op: 'is' }, /rules\[0\]\.conditions\[0\]\.value is required for is/],
  ])('refuses %j naming the part', async (condition, message) => {
    await start()
    const res = await patch(ruleWith(condition))
    expect(res.statusCode).toBe(400)
    expect((res.json() as { error: { message: string } }).error.message).toMatch(message)
  })

  it('refuses an unknown operator through the schema, naming it', async () => {
    await start()
    const res = await patch(ruleWith({ field: 'subscription.plan', op: 'resembles', value: 'x' }))
    expect(res.statusCode).toBe(400)
    expect(JSON.stringify(res.json())).toMatch(/op/)
  })

  it("keeps a community's rules and filter its own, and a document without them as it was", async () => {
    const harness = await start()
    const before = (await harness.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json() as Mappings
    expect(before.filter).toBeUndefined()
    expect(before.events['subscription.started']?.rules).toBeUndefined()
    await harness.putMappings(withRules)
    const a = (await harness.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json() as Mappings
    const b = (await harness.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asB })).json() as Mappings
    expect(a.filter).toEqual(notTestAccounts)
    expect(a.events['subscription.started']?.rules).toEqual([annualRule])
    expect(b.filter).toBeUndefined()
    expect(b.events['subscription.started']?.rules).toBeUndefined()
  })
})
