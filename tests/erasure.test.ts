/**
 * Erasure end to end (issue 19, point 5): the real app on SQLite, the Kit stand-in and a real
 * receiver of platform events. A `user.deleted` mapped to erase unsubscribes the person in Kit,
 * empties every mapped field and removes every mapped tag, lists them to delete by hand in Kit with
 * the link to their page, and is never reported back to App Station as an unsubscribe. Locally,
 * once the deletion settled, no email, name or field value of the member is left in any table,
 * while the ordering guard still works.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { makeEvent, waitFor, type EventInput } from './helpers/events.ts'
import { receiverForTests } from './helpers/platform-receiver.ts'
import { asA, asB, KEY, PipelineHarness } from './helpers/pipeline.ts'

const INTERVAL_MS = 1000
let h: PipelineHarness | undefined
const receiver = receiverForTests(async () => {
  await h?.close()
  h = undefined
})

afterEach(async () => {
  await h?.close()
  h = undefined
})

/** What identifies the member: none of it may be stored once they are deleted. */
const EMAIL = 'adelheid.quist@example.com'
const NAME = 'Adelheid'
const PLAN = 'zebra-plan-77'
const LEVEL = 'obsidian-level-42'

async function harness(): Promise<PipelineHarness> {
  h = await PipelineHarness.start({
    connected: true,
    kit: { listLagMs: 200 },
    config: { kitPollIntervalS: INTERVAL_MS / 1000, platformEvents: { url: receiver.url, secret: receiver.secret } },
  })
  await h.putMappings((doc) => {
    doc.events['user.deleted'] = { add_tags: [], remove_tags: [], add_to_forms: [], add_to_sequences: [], unsubscribe: false, erase: true }
    // A templated tag names a shared value (a tier), not the member: tag names are the community's vocabulary.
    doc.events['user.updated'].add_tags = [{ name: 'Tier: {{member.fields.mk_tier}}' }]
  })
  return h
}

/** Ada joins, subscribes and is updated: Kit has her with her fields and three tags. */
async function joined(app: PipelineHarness, memberId = 'm_ada'): Promise<void> {
  const events: EventInput[] = [
    { type: 'user.signed_up', firstName: NAME, fields: { mk_subscription_plan: PLAN } },
    { type: 'subscription.started', subscription: { id: `s_${memberId}`, plan: PLAN, status: 'active' } },
    { type: 'user.updated', firstName: NAME, fields: { mk_subscription_plan: PLAN, mk_access_level: LEVEL, mk_tier: 'gold' } },
  ]
  for (const input of events) {
    const id = await app.send({ memberId, email: EMAIL, ...input })
    expect((await app.settled(id)).status).toBe('succeeded')
  }
  await waitFor(() => app.app.sqlite.prepare(`SELECT 1 FROM kit_member_states WHERE member_id = ?`).get(memberId), {
    what: 'the member seen in Kit',
  })
}

/** Waits until the Kit watch completed a poll after now. */
async function pollAfter(app: PipelineHarness, after: number): Promise<void> {
  await waitFor(
    () => {
      const row = app.app.sqlite.prepare('SELECT polled_from AS f FROM kit_watch_polls').get() as { f: number } | undefined
      return row !== undefined && row.f > after
    },
    { what: 'a complete poll', timeoutMs: 5000 },
  )
}

/** Every row of every table, as text, to search for what must not be there. */
function everyStoredValue(app: PipelineHarness): string {
  const tables = app.app.sqlite
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
    .pluck()
    .all() as string[]
  return tables.map((t) => `${t}: ${JSON.stringify(app.app.sqlite.prepare(`SELECT * FROM "${t}"`).all())}`).join('\n')
}

const row = (app: PipelineHarness, sql: string, ...params: unknown[]) => app.app.sqlite.prepare(sql).get(...params)

describe('erasing a deleted member from Kit', () => {
  it('unsubscribes them, empties every mapped field and removes every mapped tag, creating nobody', async () => {
    const app = await harness()
    await joined(app)
    expect(app.tagNames(EMAIL)).toEqual(['Active Member', 'New Member', 'Tier: gold'])
    const id = await app.send({ type: 'user.deleted', memberId: 'm_ada', email: EMAIL, fields: { mk_tier: 'gold' } })
    const delivery = await app.settled(id)
    expect(delivery.status).toBe('succeeded')
    const ada = app.subscriber(EMAIL)
    expect(ada).toMatchObject({ state: 'cancelled', first_name: NAME })
    expect(Object.values(ada!.fields).filter((v) => v !== '')).toEqual([])
    expect(app.tagNames(EMAIL)).toEqual([])
    expect(app.kit.account(KEY).subscribers).toHaveLength(1)
    const steps = JSON.parse(delivery.steps) as { action: string }[]
    expect(steps.map((s) => s.action)).toContain('unsubscribed')
  })

  it('lists them under erasures with the link to their page in Kit, for this community only, until marked done', async () => {
    const app = await harness()
    await joined(app)
    await app.settled(await app.send({ type: 'user.deleted', memberId: 'm_ada', email: EMAIL }))
    const ada = app.subscriber(EMAIL)!
    const list = await app.app.inject({ method: 'GET', url: '/api/v1/erasures', headers: asA })
    expect(list.statusCode).toBe(200)
    expect(list.json()).toEqual({
      items: [
        { member_id: 'm_ada', subscriber_id: ada.id, kit_url: `https://app.kit.com/subscribers/${ada.id}`, erased_at: expect.any(String) },
      ],
    })
    expect((await app.app.inject({ method: 'GET', url: '/api/v1/erasures', headers: asB })).json()).toEqual({ items: [] })
    const done = await app.app.inject({ method: 'POST', url: '/api/v1/erasures/m_ada/done', headers: asA })
    expect(done.statusCode).toBe(204)
    expect((await app.app.inject({ method: 'GET', url: '/api/v1/erasures', headers: asA })).json()).toEqual({ items: [] })
  })

  it('never tells App Station of the unsubscribe it sent itself, whatever the Kit watch sees afterwards', async () => {
    const app = await harness()
    await joined(app)
    await pollAfter(app, Date.now())
    expect((await app.settled(await app.send({ type: 'user.deleted', memberId: 'm_ada', email: EMAIL }))).status).toBe('succeeded')
    expect(app.subscriber(EMAIL)?.state).toBe('cancelled')
    await pollAfter(app, Date.now())
    await pollAfter(app, Date.now())
    expect(receiver.received).toHaveLength(0)
    expect(row(app, 'SELECT count(*) AS n FROM platform_events')).toEqual({ n: 0 })
  })

  it('leaves no email, name or field value of theirs in the database, and keeps what the ordering guard needs', async () => {
    const app = await harness()
    await joined(app)
    expect(everyStoredValue(app)).toContain(EMAIL)
    const deletion = makeEvent({
      type: 'user.deleted',
      memberId: 'm_ada',
      email: EMAIL,
      firstName: NAME,
      fields: { mk_access_level: LEVEL },
    })
    expect((await app.post(deletion)).statusCode).toBe(202)
    await app.settled(deletion.id as string)
    await waitFor(() => row(app, `SELECT 1 FROM events WHERE member_id = 'm_ada' AND member_email = ''`) !== undefined, {
      what: 'the personal data purged',
    })
    await waitFor(() => !everyStoredValue(app).toLowerCase().includes(EMAIL), { what: 'no stored email' })
    const stored = everyStoredValue(app)
    for (const personal of [EMAIL, NAME, PLAN, LEVEL]) expect(stored.toLowerCase()).not.toContain(personal.toLowerCase())
    expect(row(app, `SELECT count(*) AS n FROM kit_subscribers`)).toEqual({ n: 0 })
    expect(row(app, `SELECT count(*) AS n FROM kit_member_states`)).toEqual({ n: 0 })

    // The ordering guard: the same event is still a duplicate, the member's marks are kept, and the Activity still tells what was done.
    expect(row(app, `SELECT count(*) AS n FROM events WHERE member_id = 'm_ada'`)).toEqual({ n: 4 })
    expect((await app.post(deletion)).statusCode).toBe(200)
    expect(row(app, `SELECT event_id AS e FROM ordering_marks WHERE scope = 'deleted:m_ada'`)).toEqual({ e: deletion.id })
    const steps = JSON.parse((app.delivery(deletion.id as string) as { steps: string }).steps) as {
      action: string
      target: string | null
    }[]
    expect(steps.map((s) => s.action)).toEqual(expect.arrayContaining(['tag.removed', 'unsubscribed']))
  })

  it('sends nothing of an older event arriving after the deletion, and purges what it carried', async () => {
    const app = await harness()
    await joined(app)
    const past = new Date(Date.now() - 60_000).toISOString()
    await app.settled(await app.send({ type: 'user.deleted', memberId: 'm_ada', email: EMAIL, fields: { mk_tier: 'gold' } }))
    expect(app.tagNames(EMAIL)).toEqual([])
    const before = app.kit.requests.length
    const late = await app.send({ type: 'user.signed_up', memberId: 'm_ada', email: EMAIL, firstName: NAME, time: past })
    const skipped = await app.settled(late)
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'member_deleted' })
    expect(app.callsSince(before).filter((c) => !c.startsWith('GET /v4/subscribers?'))).toEqual([])
    expect(app.tagNames(EMAIL)).toEqual([])
    await waitFor(() => !everyStoredValue(app).toLowerCase().includes(EMAIL), { what: 'the late event purged' })
  })

  it('purges the personal data of a member deleted without erasure too, and lists nobody', async () => {
    const app = await harness()
    await app.putMappings((doc) => {
      doc.events['user.deleted'] = { add_tags: [], remove_tags: [], add_to_forms: [], add_to_sequences: [], unsubscribe: true }
    })
    await joined(app)
    await app.settled(await app.send({ type: 'user.deleted', memberId: 'm_ada', email: EMAIL }))
    expect(app.subscriber(EMAIL)?.state).toBe('cancelled')
    expect(app.tagNames(EMAIL)).toEqual(['Active Member', 'New Member', 'Tier: gold'])
    await waitFor(() => !everyStoredValue(app).toLowerCase().includes(EMAIL), { what: 'no stored email' })
    expect((await app.app.inject({ method: 'GET', url: '/api/v1/erasures', headers: asA })).json()).toEqual({ items: [] })
  })

  it('finds nobody to erase for a member Kit never had: lists nobody, and still purges', async () => {
    const app = await harness()
    const id = await app.send({ type: 'user.deleted', memberId: 'm_ghost', email: 'ghost@example.com', firstName: 'Ghost' })
    expect((await app.settled(id)).status).toBe('skipped')
    expect(app.subscriber('ghost@example.com')).toBeUndefined()
    expect((await app.app.inject({ method: 'GET', url: '/api/v1/erasures', headers: asA })).json()).toEqual({ items: [] })
    await waitFor(() => !everyStoredValue(app).includes('ghost@example.com'), { what: 'no stored email' })
  })
})
