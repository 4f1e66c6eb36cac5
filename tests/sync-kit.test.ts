import { afterEach, describe, expect, it } from 'vitest'
import { makeEvent, waitFor } from './helpers/events.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { emptyEventMapping } from '#shared/defaults.ts'
import type { Mappings } from '#shared/api.ts'

let h: PipelineHarness

async function setup({ kitRate = 100_000, windowMs = 60_000, concurrency = 4 } = {}) {
  h = await PipelineHarness.start({
    kit: { rateLimit: { limit: kitRate, windowMs } },
    config: { kitRateLimit: kitRate, kitRateWindowMs: windowMs, logLevel: 'warn' },
    pipeline: { concurrency, retry: { baseMs: 30, maxMs: 100, rateLimitWaitMs: 300 } },
    connected: true,
  })
}

afterEach(async () => {
  await h.close()
})

const saveMappings = (change: (doc: Mappings) => void) => h.putMappings(change)

/** One tag in the whole mapping (on user.signed_up), one member field. */
const oneTagOneField = (doc: Mappings) => {
  for (const type of Object.keys(doc.events) as (keyof Mappings['events'])[]) doc.events[type] = emptyEventMapping()
  doc.events['user.signed_up'] = { ...emptyEventMapping(), add_tags: [{ name: 'New Member' }] }
  doc.fields = [{ source: 'mk_plan', kit_field: { key: 'plan', label: 'Plan' } }]
}

const upload = (body: string, { dryRun = false, type = 'text/csv' } = {}) =>
  h.app.inject({
    method: 'POST',
    url: `/api/v1/syncs${dryRun ? '?dry_run=true' : ''}`,
    headers: { ...asA, 'content-type': type },
    payload: body,
  })

/** Read through the service: polling the API would run into its own rate limit. */
const syncOf = async (id: string) => h.app.pipeline.syncs.get('c_alpha', id)

async function waitForSync(id: string, timeoutMs: number) {
  const start = Date.now()
  for (;;) {
    const sync = await syncOf(id)
    if (sync.status === 'completed' || sync.status === 'cancelled') return sync
    if (Date.now() - start > timeoutMs) throw new Error(`sync ${id} not finished: ${JSON.stringify(sync)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const subscriber = (email: string) => h.subscriber(email)
const tagNames = (email: string) => h.tagNames(email)
const kitRequestsAfter = (mark: number) => h.kit.requests.slice(mark).filter((r) => r.path !== '/v4/account')

describe('a sync against Kit', () => {
  it('brings 10,000 members over exactly right, with at most 1.2 Kit requests a member on a fresh account', async () => {
    await setup({ kitRate: 1_000_000, concurrency: 8 })
    await saveMappings(oneTagOneField)
    const members = 10_000
    const lines = ['email,member_id,first_name,mk_plan']
    for (let i = 0; i < members; i++) lines.push(`Member${i}@Example.com,m_${i},Name ${i},plan-${i % 3}`)
    const mark = h.kit.requests.length
    const res = await upload(`${lines.join('\n')}\n`)
    expect(res.statusCode).toBe(202)
    const sync = await waitForSync(res.json().id, 240_000)
    expect(sync).toMatchObject({ status: 'completed', total: members, done: members, failed: 0, skipped: 0, remaining: 0 })

    const account = h.kit.account(KEY)
    expect(account.subscribers).toHaveLength(members)
    const byEmail = new Map(account.subscribers.map((s) => [s.email_address, s]))
    for (let i = 0; i < members; i++) {
      const s = byEmail.get(`member${i}@example.com`)
      expect(s?.first_name).toBe(`Name ${i}`)
      expect(s?.fields).toEqual({ plan: `plan-${i % 3}` })
      // A snapshot applies the member.snapshot mapping (subscriber and fields), not user.signed_up's tag.
      expect(s?.tags.size).toBe(0)
    }
    const requests = kitRequestsAfter(mark)
    expect(requests.length / members).toBeLessThanOrEqual(1.2)
    expect(sync.kit_requests).toBe(h.app.sqlite.prepare('SELECT sum(kit_requests) AS n FROM deliveries').pluck().get())
  }, 300_000)

  it("applies the tags a member's subscription status and access level imply, through those events' mappings", async () => {
    await setup()
    const res = await upload(
      [
        'email,member_id,subscription_plan,subscription_status,access_level',
        'payer@example.com,m_pay,pro,active,',
        'gone@example.com,m_gone,pro,canceled,',
        'gold@example.com,m_gold,,,gold',
        'plain@example.com,m_plain,,,',
      ].join('\n'),
    )
    const sync = await waitForSync(res.json().id, 20_000)
    expect(sync.done).toBe(4)
    expect(tagNames('payer@example.com')).toEqual(['Active Member'])
    expect(subscriber('payer@example.com')?.fields).toMatchObject({ subscription_plan: 'pro' })
    expect(tagNames('gone@example.com')).toEqual(['Cancelled'])
    expect(subscriber('gone@example.com')?.fields.subscription_plan).toBeUndefined()
    expect(tagNames('gold@example.com')).toEqual(['Access: gold'])
    expect(subscriber('gold@example.com')?.fields).toMatchObject({ access_level: 'gold' })
    expect(tagNames('plain@example.com')).toEqual([])
  })

  it("a live event during a sync is applied first and wins over the member's snapshot", async () => {
    // 5 requests a second (4 for the backlog): the sync takes about 15 s, the live event must not wait for it.
    await setup({ kitRate: 5, windowMs: 1000 })
    // The default mappings (subscription.started tags Active Member, subscription.canceled tags
    // Cancelled) and one member field.
    await saveMappings((doc) => {
      doc.fields = [{ source: 'mk_plan', kit_field: { key: 'plan', label: 'Plan' } }]
    })
    const lines = ['email,member_id,first_name,mk_plan,subscription_status']
    for (let i = 0; i < 60; i++) lines.push(`s${i}@example.com,m_${i},Snap ${i},snap,`)
    lines.push('late@example.com,m_late,Snapshot Name,snap,active')
    const res = await upload(lines.join('\n'))
    const syncId = res.json().id as string

    const member = { memberId: 'm_late', email: 'late@example.com' }
    const updated = makeEvent({
      ...member,
      type: 'user.updated',
      firstName: 'Live Name',
      fields: { mk_plan: 'live' },
      time: new Date(Date.now() + 1000).toISOString(),
    })
    const canceled = makeEvent({
      ...member,
      type: 'subscription.canceled',
      subscription: { id: 's_late' },
      time: new Date(Date.now() + 2000).toISOString(),
    })
    for (const live of [updated, canceled]) expect((await h.post(live)).statusCode).toBe(202)
    const statusOf = (id: unknown) =>
      (h.app.sqlite.prepare('SELECT status FROM deliveries WHERE event_id = ?').get(id) as { status: string }).status
    await waitFor(() => statusOf(updated.id) === 'succeeded' && statusOf(canceled.id) === 'succeeded', {
      timeoutMs: 20_000,
      what: 'the live events',
    })
    expect((await syncOf(syncId)).remaining).toBeGreaterThan(40)
    expect(subscriber('late@example.com')?.first_name).toBe('Live Name')

    const sync = await waitForSync(syncId, 60_000)
    expect(sync).toMatchObject({ done: 60, skipped: 1 })
    const snapshot = h.app.sqlite
      .prepare(`SELECT status, reason, kit_requests FROM deliveries WHERE sync_id = ? AND member_id = 'm_late'`)
      .get(syncId) as { status: string; reason: string; kit_requests: number }
    expect(snapshot.status).toBe('skipped')
    expect(snapshot.reason).toBe('stale_snapshot')
    expect(snapshot.kit_requests).toBe(0)
    expect(subscriber('late@example.com')?.first_name).toBe('Live Name')
    expect(subscriber('late@example.com')?.fields).toEqual({ plan: 'live' })
    expect(tagNames('late@example.com')).toEqual(['Cancelled'])
  }, 90_000)

  it('a dry run after a sync finds every member unchanged and makes no Kit request at all', async () => {
    await setup()
    await saveMappings(oneTagOneField)
    const file = ['email,member_id,first_name,mk_plan', 'a@example.com,m_a,Ann,gold', 'b@example.com,m_b,Bob,free'].join('\n')
    await waitForSync((await upload(file)).json().id, 20_000)
    const mark = h.kit.requests.length
    const plan = (await upload(`${file}\nc@example.com,m_c,Cy,free\n`, { dryRun: true })).json()
    expect(plan.subscribers.unchanged).toEqual({ count: 2, examples: ['a@example.com', 'b@example.com'] })
    expect(plan.subscribers.create).toEqual({ count: 1, examples: ['c@example.com'] })
    expect(plan.estimated_kit_requests).toBe(1)
    expect(h.kit.requests.length).toBe(mark)
  })

  it('the platform can push a member.snapshot to /events: applied after live events, like a sync row', async () => {
    await setup()
    const event = makeEvent({
      type: 'member.snapshot',
      memberId: 'm_push',
      email: 'push@example.com',
      firstName: 'Pat',
      access: { level: 'silver' },
    })
    const res = await h.post(event)
    expect(res.statusCode).toBe(202)
    const d = await waitFor(
      () => {
        const row = h.app.sqlite.prepare('SELECT status, priority FROM deliveries WHERE event_id = ?').get(event.id) as {
          status: string
          priority: number
        }
        return row.status === 'succeeded' ? row : undefined
      },
      { what: 'the pushed snapshot' },
    )
    expect(d.priority).toBe(1)
    expect(subscriber('push@example.com')?.first_name).toBe('Pat')
    expect(tagNames('push@example.com')).toEqual(['Access: silver'])

    const bad = makeEvent({ type: 'member.snapshot', subscription: { id: 's_1', status: 'paused-ish' } })
    const refused = await h.post(bad)
    expect(refused.statusCode).toBe(400)
    expect(refused.json().error.message).toContain('data.subscription.status "paused-ish"')
  })
})
