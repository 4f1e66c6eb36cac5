/**
 * The poll (contract §7, how the plugin learns): the real app on SQLite, the Kit stand-in and a
 * real receiver that checks signatures. What a person does in Kit (unsubscribe, bounce, complain,
 * a new first name) reaches App Station signed, once, within a poll interval; the plugin's own
 * writes are never echoed; when nothing changed each interval costs exactly one Kit request.
 */
import { describe, expect, it } from 'vitest'
import pino from 'pino'
import type { KitStateRepository } from '../server/core/storage.ts'
import { KitSideMemory, KitWatch, updatedAfter } from '../server/pipeline/kit-watch.ts'
import { waitFor } from './helpers/events.ts'
import { receiverForTests, type Received } from './helpers/platform-receiver.ts'
import { KEY, PipelineHarness } from './helpers/pipeline.ts'

const INTERVAL_MS = 1000
let h: PipelineHarness | undefined
const receiver = receiverForTests(async () => {
  await h?.close()
  h = undefined
})

async function harness(): Promise<PipelineHarness> {
  h = await PipelineHarness.start({
    connected: true,
    // New subscribers stay out of Kit's lists for a while; shortened so the test waits seconds.
    kit: { listLagMs: 200 },
    config: { kitPollIntervalS: INTERVAL_MS / 1000, platformEvents: { url: receiver.url, secret: receiver.secret } },
  })
  return h
}

async function member(harness: PipelineHarness, memberId: string, email: string, firstName = 'Ada'): Promise<void> {
  const id = await harness.send({ type: 'user.signed_up', memberId, email, firstName })
  expect((await harness.settled(id)).status).toBe('succeeded')
}

/** Waits until the watch has completed a poll after now (its row moved past `after`). */
async function pollAfter(harness: PipelineHarness, after: number): Promise<void> {
  await waitFor(
    () => {
      const row = harness.app.sqlite.prepare('SELECT polled_from AS f FROM kit_watch_polls').get() as { f: number } | undefined
      return row !== undefined && row.f > after
    },
    { what: 'a complete poll', timeoutMs: 5000 },
  )
}

const ofType = (type: string): Received[] => receiver.accepted().filter((r) => r.body.type === type)

async function adminPost(harness: PipelineHarness, email: string, action: string): Promise<void> {
  const res = await fetch(`${harness.kit.url}/_admin/subscribers/${encodeURIComponent(email)}/${action}`, {
    method: 'POST',
    headers: { 'X-Kit-Api-Key': KEY },
  })
  expect(res.status).toBe(200)
}

describe('the Kit watch poll', () => {
  it('asks for the day before the last poll, since Kit filters by whole days', () => {
    expect(updatedAfter(Date.parse('2026-12-07T00:30:00Z'))).toBe('2026-12-06')
    expect(updatedAfter(Date.parse('2026-12-07T23:59:00Z'))).toBe('2026-12-06')
  })

  it('tells the platform of an unsubscribe made in Kit, signed, once, within one poll interval', async () => {
    const app = await harness()
    await member(app, 'm_ada', 'ada@example.com')
    await pollAfter(app, Date.now())
    const at = Date.now()
    await adminPost(app, 'ada@example.com', 'unsubscribe')
    const [event] = await waitFor(() => ofType('kit.subscriber.unsubscribed').length > 0 && ofType('kit.subscriber.unsubscribed'), {
      what: 'the unsubscribe',
      timeoutMs: 5000,
    })
    // A poll interval, a tick (a tenth of it) and the send.
    expect(Date.now() - at).toBeLessThan(INTERVAL_MS + 500)
    expect(event!.verified).toBe(true)
    expect(event!.body).toMatchObject({
      type: 'kit.subscriber.unsubscribed',
      communityid: 'c_alpha',
      subject: 'members/m_ada',
      data: {
        member: { id: 'm_ada', email: 'ada@example.com' },
        kit: { state: 'cancelled', email_address: 'ada@example.com', first_name: 'Ada' },
      },
    })
    await pollAfter(app, Date.now())
    await pollAfter(app, Date.now())
    expect(ofType('kit.subscriber.unsubscribed')).toHaveLength(1)
    expect(receiver.received.filter((r) => r.body.type === 'kit.subscriber.unsubscribed').every((r) => r.id === event!.id)).toBe(true)
  })

  it('tells it of a bounce and a complaint as the events of their own types', async () => {
    const app = await harness()
    await member(app, 'm_b', 'b@example.com')
    await member(app, 'm_c', 'c@example.com')
    await pollAfter(app, Date.now())
    await adminPost(app, 'b@example.com', 'bounce')
    await adminPost(app, 'c@example.com', 'complain')
    await waitFor(() => ofType('kit.subscriber.bounced').length === 1 && ofType('kit.subscriber.complained').length === 1, {
      what: 'bounce and complaint',
      timeoutMs: 5000,
    })
    expect(ofType('kit.subscriber.bounced')[0]!.body).toMatchObject({ subject: 'members/m_b', data: { kit: { state: 'bounced' } } })
    expect(ofType('kit.subscriber.complained')[0]!.body).toMatchObject({ subject: 'members/m_c', data: { kit: { state: 'complained' } } })
    expect(ofType('kit.subscriber.unsubscribed')).toHaveLength(0)
  })

  it('tells it of a first name and an email changed in Kit, with the changes under Kit’s names', async () => {
    const app = await harness()
    await member(app, 'm_ada', 'ada@example.com')
    await pollAfter(app, Date.now())
    app.kit.editSubscriber(KEY, 'ada@example.com', { firstName: 'Adelaide', email: 'adelaide@example.com' })
    const [event] = await waitFor(() => ofType('kit.subscriber.updated').length > 0 && ofType('kit.subscriber.updated'), {
      what: 'the rename',
      timeoutMs: 5000,
    })
    expect(event!.body).toMatchObject({
      subject: 'members/m_ada',
      data: {
        member: { id: 'm_ada', email: 'ada@example.com' },
        kit: { state: 'active', first_name: 'Adelaide', email_address: 'adelaide@example.com' },
        changes: { first_name: { from: 'Ada', to: 'Adelaide' }, email_address: { from: 'ada@example.com', to: 'adelaide@example.com' } },
      },
    })
    await pollAfter(app, Date.now())
    await pollAfter(app, Date.now())
    expect(ofType('kit.subscriber.updated')).toHaveLength(1)
  })

  it('never echoes the plugin’s own writes: a delivery that set a new first name and email', async () => {
    const app = await harness()
    await member(app, 'm_ada', 'ada@example.com')
    await waitFor(() => app.app.sqlite.prepare(`SELECT first_name AS n FROM kit_member_states WHERE member_id = 'm_ada'`).get(), {
      what: 'Ada seen in Kit',
      timeoutMs: 5000,
    })
    const id = await app.send({ type: 'user.updated', memberId: 'm_ada', email: 'ada.l@example.com', firstName: 'Adelaide' })
    expect((await app.settled(id)).status).toBe('succeeded')
    expect(app.subscriber('ada.l@example.com')).toMatchObject({ first_name: 'Adelaide' })
    await pollAfter(app, Date.now())
    await pollAfter(app, Date.now())
    expect(receiver.received).toHaveLength(0)
  })

  it('never reports an unsubscribe the plugin itself sent and acknowledged', async () => {
    const app = await harness()
    await member(app, 'm_ada', 'ada@example.com')
    await waitFor(() => app.app.sqlite.prepare(`SELECT 1 FROM kit_member_states WHERE member_id = 'm_ada'`).get(), {
      what: 'Ada seen in Kit',
      timeoutMs: 5000,
    })
    const credentialId = (await app.app.storage.connections.get('c_alpha'))!.credentialId
    const ada = app.subscriber('ada@example.com')!
    // As a consent withdrawal would: the plugin says what it is about to do, then unsubscribes Ada in Kit.
    await new KitSideMemory(app.app.storage.kitStates, null).unsubscribing({
      communityId: 'c_alpha',
      credentialId,
      memberId: 'm_ada',
      subscriberId: ada.id,
      email: 'ada@example.com',
      firstName: 'Ada',
    })
    app.kit.changeState(KEY, 'ada@example.com', 'cancelled')
    await pollAfter(app, Date.now())
    await pollAfter(app, Date.now())
    expect(receiver.received).toHaveLength(0)
  })

  it('never reports an unsubscribe a delivery sent through its mapping', async () => {
    const app = await harness()
    await app.putMappings((doc) => {
      doc.events['subscription.canceled'] = {
        add_tags: [],
        remove_tags: [],
        add_to_forms: [],
        add_to_sequences: [],
        unsubscribe: true,
      }
    })
    await member(app, 'm_ada', 'ada@example.com')
    await waitFor(() => app.app.sqlite.prepare(`SELECT 1 FROM kit_member_states WHERE member_id = 'm_ada'`).get(), {
      what: 'Ada seen in Kit',
      timeoutMs: 5000,
    })
    const id = await app.send({
      type: 'subscription.canceled',
      memberId: 'm_ada',
      email: 'ada@example.com',
      subscription: { id: 's_ada', plan: 'pro', status: 'canceled' },
    })
    expect((await app.settled(id)).status).toBe('succeeded')
    expect(app.subscriber('ada@example.com')).toMatchObject({ state: 'cancelled', first_name: 'Ada' })
    await pollAfter(app, Date.now())
    await pollAfter(app, Date.now())
    expect(receiver.received).toHaveLength(0)
    expect(app.app.sqlite.prepare(`SELECT state, first_name AS n, email FROM kit_member_states WHERE member_id = 'm_ada'`).get()).toEqual({
      state: 'cancelled',
      n: 'Ada',
      email: 'ada@example.com',
    })
  })

  it('reports nobody the plugin does not know as a member', async () => {
    const app = await harness()
    app.kit.createSubscriber(KEY, { email: 'stranger@example.com', state: 'active' })
    await pollAfter(app, Date.now())
    app.kit.changeState(KEY, 'stranger@example.com', 'cancelled')
    await pollAfter(app, Date.now())
    await pollAfter(app, Date.now())
    expect(receiver.received).toHaveLength(0)
  })

  it('costs exactly one Kit request per connection per interval when nothing changed', async () => {
    const app = await harness()
    await member(app, 'm_ada', 'ada@example.com')
    await pollAfter(app, Date.now())
    const from = app.kit.requests.length
    const started = Date.now()
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS * 4 + 200))
    const elapsed = Date.now() - started
    const polls = app.kit.requests.slice(from)
    expect(polls.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(polls.map(() => 'GET /v4/subscribers 200'))
    expect(
      polls.every(
        (r) =>
          new URLSearchParams(r.query).get('status') === 'all' &&
          /^\d{4}-\d{2}-\d{2}$/.test(new URLSearchParams(r.query).get('updated_after') ?? ''),
      ),
    ).toBe(true)
    expect(polls.length).toBeGreaterThanOrEqual(Math.floor(elapsed / INTERVAL_MS) - 1)
    expect(polls.length).toBeLessThanOrEqual(Math.ceil(elapsed / INTERVAL_MS))
    for (let i = 1; i < polls.length; i += 1) expect(polls[i]!.at - polls[i - 1]!.at).toBeGreaterThanOrEqual(INTERVAL_MS - 50)
    expect(receiver.received).toHaveLength(0)
  })

  it('sends nothing while the budget has no spare room, so deliveries and the panel are never delayed', async () => {
    h = await PipelineHarness.start({
      connected: true,
      kit: { listLagMs: 200 },
      config: { kitPollIntervalS: 300, kitRateLimit: 8, platformEvents: { url: receiver.url, secret: receiver.secret } },
    })
    const app = h
    const credentialId = (await app.app.storage.connections.get('c_alpha'))!.credentialId
    // The connection is first seen (its first poll set an interval away); made due once the slots are taken.
    await waitFor(() => app.app.sqlite.prepare('SELECT 1 FROM kit_watch_polls').get(), { what: 'the poll row' })
    // Background slots are 7 of 8; a quarter of them must stay free: 6 in use leaves too little.
    const held: (() => void)[] = []
    for (let i = 0; i < 6; i += 1) {
      const slot = await app.app.kitBudget.tryAcquire(credentialId, 'background')
      if (!('release' in slot)) throw new Error('no slot for the test')
      held.push(slot.release)
    }
    app.app.sqlite.prepare('UPDATE kit_watch_polls SET next_poll_at = 0').run()
    const from = app.kit.requests.length
    expect(await app.app.kitWatch.pollConnection('c_alpha', credentialId)).toBe('no_room')
    expect(app.kit.requests.length).toBe(from)
    expect(app.app.sqlite.prepare('SELECT next_poll_at AS n FROM kit_watch_polls').get()).toEqual({ n: 0 })
    for (const release of held) release()
  })
})

describe('the Kit watch at rest', () => {
  it('reads nothing on an idle tick: connections are listed again when a poll is due, one changed, or an interval passed', async () => {
    let t = 1_000_000
    let lists = 0
    const claims: number[] = []
    const states = {
      claimPoll: async (_communityId: string, _credentialId: string, now: number, intervalMs: number) => {
        claims.push(now)
        return { dueAt: now + intervalMs }
      },
    } as unknown as KitStateRepository
    const watch = new KitWatch({
      states,
      connectedCredentials: async () => {
        lists += 1
        return new Map([['c_1', 'cred_1']])
      },
      credential: async () => null,
      markInvalid: async () => {},
      kitFor: () => {
        throw new Error('no Kit call expected')
      },
      budget: {
        usage: () => ({ inWindow: 0, inFlight: 0, waiting: 0, blockedUntil: null, strikes: 0 }),
        rateOf: () => ({ limit: 10, interactiveReserve: 2 }),
      },
      emit: async () => ({ status: 'not_configured' }),
      log: pino({ level: 'silent' }),
      intervalMs: 60_000,
      publicUrl: null,
      now: () => t,
    })
    await watch.tick()
    expect([lists, claims.length]).toEqual([1, 1])
    t += 30_000
    await watch.tick()
    await watch.tick()
    expect([lists, claims.length], 'idle ticks read nothing').toEqual([1, 1])
    watch.connectionsChanged()
    await watch.tick()
    expect([lists, claims.length], 'a connection changed: listed again, nothing due').toEqual([2, 1])
    t += 30_000
    await watch.tick()
    expect([lists, claims.length], 'a poll due: listed again, then claimed').toEqual([3, 2])
  })
})
