import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from './helpers/app.ts'
import { makeEvent, postEvent, waitFor } from './helpers/events.ts'
import { storeDelivery } from './helpers/deliveries.ts'
import { Retention } from '../server/pipeline/retention.ts'

const DAY = 24 * 60 * 60_000

let app: FastifyInstance
let logs: string[]
let secret: string

beforeEach(async () => {
  const built = await buildTestApp({ retentionDays: 30 }, { autoStart: false })
  ;({ app, logs } = built)
  secret = built.config.eventsSecrets[0] as string
})
afterEach(async () => {
  await app.close()
})

type Status = 'pending' | 'retrying' | 'held' | 'succeeded' | 'failed' | 'skipped'

/** One event and its delivery, last updated `updatedDaysAgo` days ago. */
function stored(status: Status, updatedDaysAgo: number, receivedDaysAgo = updatedDaysAgo): string {
  const received = Date.now() - receivedDaysAgo * DAY
  return storeDelivery(app.sqlite, { status, eventTime: received, receivedAt: received, updatedAt: Date.now() - updatedDaysAgo * DAY })
    .eventId
}

const eventIds = () => (app.sqlite.prepare('SELECT id FROM events ORDER BY id').all() as { id: string }[]).map((r) => r.id)
const deliveryEventIds = () =>
  (app.sqlite.prepare('SELECT event_id FROM deliveries ORDER BY event_id').all() as { event_id: string }[]).map((r) => r.event_id)
const count = (table: string) => (app.sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n

describe('retention', () => {
  it('deletes finished deliveries and their events older than RETENTION_DAYS, keeping newer ones', async () => {
    const old = [stored('succeeded', 31), stored('failed', 45), stored('skipped', 400)]
    const recent = [stored('succeeded', 29), stored('failed', 1), stored('skipped', 0)]
    const result = await app.pipeline.retention.run()
    expect(result).toMatchObject({ deliveries: 3, events: 3 })
    expect(eventIds()).toEqual([...recent].sort())
    expect(deliveryEventIds()).toEqual([...recent].sort())
    expect(eventIds()).not.toContain(old[0])
  })

  it('never deletes pending, retrying or held work, whatever its age', async () => {
    const waiting = [stored('pending', 400), stored('retrying', 90), stored('held', 31)]
    expect(await app.pipeline.retention.run()).toMatchObject({ deliveries: 0, events: 0 })
    expect(eventIds()).toEqual([...waiting].sort())
    expect(deliveryEventIds()).toEqual([...waiting].sort())
  })

  it('measures age from the last update, not from receipt', async () => {
    const failedLately = stored('failed', 10, 60)
    await app.pipeline.retention.run()
    expect(deliveryEventIds()).toEqual([failedLately])
  })

  it('works through more rows than one batch, one transaction of at most 500 per batch', async () => {
    app.sqlite.transaction(() => {
      for (let i = 0; i < 1_234; i++) stored('succeeded', 31 + (i % 5))
    })()
    const keep = stored('succeeded', 2)
    const queue = app.pipeline.queue
    const purge = vi.spyOn(queue, 'purgeFinished')
    const result = await app.pipeline.retention.run()
    expect(result).toEqual({ deliveries: 1_234, events: 1_234, versions: 0, batches: 3 })
    expect(purge.mock.calls.map(([, limit]) => limit)).toEqual([500, 500, 500])
    const batches = await Promise.all(purge.mock.results.map((r) => r.value as Promise<{ deliveries: number }>))
    expect(batches.map((b) => b.deliveries)).toEqual([500, 500, 234])
    expect(deliveryEventIds()).toEqual([keep])
    expect(count('events')).toBe(1)
  })

  it('leaves the ordering marks and what was written to Kit per member alone', async () => {
    stored('succeeded', 40)
    app.sqlite
      .prepare(
        `INSERT INTO ordering_marks (community_id, scope, event_time, event_id) VALUES ('c_alpha', 'subscription:s_1', 1, 'evt_old_x')`,
      )
      .run()
    app.sqlite
      .prepare(
        `INSERT INTO kit_subscribers (community_id, credential_id, member_id, email, subscriber_id, first_name, fields, updated_at)
         VALUES ('c_alpha', 'cred_1', 'm_1', 'a@example.com', 7, NULL, '{}', 1)`,
      )
      .run()
    await app.pipeline.retention.run()
    expect(count('deliveries')).toBe(0)
    expect(count('ordering_marks')).toBe(1)
    expect(count('kit_subscribers')).toBe(1)
  })

  it('accepts an event id again once retention removed it', async () => {
    const event = makeEvent()
    expect((await postEvent(app, secret, event)).statusCode).toBe(202)
    expect((await postEvent(app, secret, event)).statusCode).toBe(200)
    app.sqlite.prepare(`UPDATE deliveries SET status = 'succeeded', updated_at = ?`).run(new Date(Date.now() - 31 * DAY).toISOString())
    await app.pipeline.retention.run()
    const again = await postEvent(app, secret, event)
    expect(again.statusCode).toBe(202)
    expect(again.json()).toEqual({ status: 'accepted', id: event.id })
  })

  it('reports how many rows it removed in the log and in /metrics', async () => {
    stored('succeeded', 31)
    stored('skipped', 31)
    const retention = new Retention({
      queue: app.pipeline.queue,
      retentionDays: 30,
      log: app.log,
    })
    retention.start()
    await retention.stop()
    expect(logs.join('\n')).toMatch(
      /"deliveries":2,"events":2,"batches":1,"retentionDays":30,"msg":"retention removed finished deliveries and their events"/,
    )

    stored('failed', 31)
    await app.pipeline.retention.run()
    const metrics = (await app.inject('/metrics')).body
    expect(metrics).toMatch(/kit_retention_deleted_total\{table="deliveries"\} 1/)
    expect(metrics).toMatch(/kit_retention_deleted_total\{table="events"\} 1/)
  })
})

describe("retention and deleted members' personal data", () => {
  /** A member's events as a crash right after settling them would leave them: no purge ran. */
  function member(memberId: string, deletion: { status: Status; updatedDaysAgo: number; reason?: string }): void {
    const email = `${memberId}@example.com`
    const at = Date.now() - 40 * DAY
    storeDelivery(app.sqlite, { memberId, memberEmail: email, status: 'succeeded', eventTime: at, receivedAt: at, updatedAt: Date.now() })
    storeDelivery(app.sqlite, {
      memberId,
      memberEmail: email,
      eventType: 'user.deleted',
      status: deletion.status,
      reason: (deletion.reason ?? null) as never,
      eventTime: at + 1,
      receivedAt: at + 1,
      updatedAt: Date.now() - deletion.updatedDaysAgo * DAY,
    })
    app.sqlite
      .prepare(
        `INSERT INTO kit_subscribers (community_id, credential_id, member_id, email, subscriber_id, first_name, fields, updated_at)
         VALUES ('c_alpha', 'cred_1', ?, ?, 7, 'Ada', '{"plan":"gold"}', 1)`,
      )
      .run(memberId, email)
  }
  const emailsOf = (memberId: string) =>
    app.sqlite.prepare(`SELECT member_email AS e FROM deliveries WHERE member_id = ? ORDER BY seq`).pluck().all(memberId) as string[]
  const subscriberRows = (memberId: string) =>
    (app.sqlite.prepare(`SELECT count(*) AS n FROM kit_subscribers WHERE member_id = ?`).get(memberId) as { n: number }).n

  it('purges what a crash between settling a deletion and purging it left behind', async () => {
    member('m_crashed', { status: 'succeeded', updatedDaysAgo: 0 })
    storeDelivery(app.sqlite, { memberId: 'm_alive', status: 'succeeded' })
    await app.pipeline.retention.run()
    expect(emailsOf('m_crashed')).toEqual(['', ''])
    expect(subscriberRows('m_crashed')).toBe(0)
    expect(emailsOf('m_alive')).toEqual(['m_alive@example.com'])
    expect(logs.join('\n')).toMatch(/"members":1,"erasures":0,.*retention purged deleted members' personal data/)
  })

  it('keeps a deletion that may be sent again until it is as old as retention, then purges it before deleting it', async () => {
    member('m_failed_lately', { status: 'failed', updatedDaysAgo: 2 })
    member('m_offline_lately', { status: 'skipped', reason: 'not_connected', updatedDaysAgo: 2 })
    member('m_failed_long_ago', { status: 'failed', updatedDaysAgo: 31 })
    await app.pipeline.retention.run()
    expect(emailsOf('m_failed_lately')).toEqual(['m_failed_lately@example.com', 'm_failed_lately@example.com'])
    expect(subscriberRows('m_failed_lately')).toBe(1)
    expect(emailsOf('m_offline_lately')).toEqual(['m_offline_lately@example.com', 'm_offline_lately@example.com'])
    expect(emailsOf('m_failed_long_ago')).toEqual([''])
    expect(subscriberRows('m_failed_long_ago')).toBe(0)
  })

  it('deletes the erasures marked done before RETENTION_DAYS, and never one still to do', async () => {
    const erasures = app.storage.erasures
    await erasures.record('c_alpha', 'm_done_long_ago', 1, Date.now() - 400 * DAY)
    await erasures.record('c_alpha', 'm_done_lately', 2, Date.now() - 400 * DAY)
    await erasures.record('c_alpha', 'm_pending', 3, Date.now() - 400 * DAY)
    await erasures.done('c_alpha', 'm_done_long_ago', Date.now() - 31 * DAY)
    await erasures.done('c_alpha', 'm_done_lately', Date.now() - 29 * DAY)
    await app.pipeline.retention.run()
    const left = app.sqlite.prepare('SELECT member_id FROM kit_erasures ORDER BY member_id').pluck().all()
    expect(left).toEqual(['m_done_lately', 'm_pending'])
  })
})

describe('retention schedule', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('runs at start and every hour, on a timer that does not keep the process alive and stops on close', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const purgeFinished = vi.fn(() => ({ deliveries: 0, events: 0 }))
    const retention = new Retention({ queue: { purgeFinished } as never, retentionDays: 30, log: app.log, now: () => 100 * DAY })
    retention.start()
    expect(purgeFinished).toHaveBeenCalledTimes(1)
    expect(purgeFinished).toHaveBeenLastCalledWith(70 * DAY, 500)
    await vi.advanceTimersByTimeAsync(60 * 60_000)
    expect(purgeFinished).toHaveBeenCalledTimes(2)
    expect(vi.getTimerCount()).toBe(1)
    await retention.stop()
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(3 * 60 * 60_000)
    expect(purgeFinished).toHaveBeenCalledTimes(2)
  })

  it('keeps no timer alive on its own', async () => {
    const setInterval = vi.spyOn(globalThis, 'setInterval')
    const retention = new Retention({ queue: app.pipeline.queue, retentionDays: 30, log: app.log })
    retention.start()
    const timer = setInterval.mock.results[0]?.value as NodeJS.Timeout
    expect(timer.hasRef()).toBe(false)
    await retention.stop()
  })

  it('runs when the app starts, and stops when it closes', async () => {
    await app.close()
    const databasePath = join(mkdtempSync(join(tmpdir(), 'kit-retention-')), 'kit.sqlite')
    const first = await buildTestApp({ databasePath }, { autoStart: false })
    app = first.app
    stored('succeeded', 31)
    const keep = stored('succeeded', 29)
    await first.app.close()

    const second = await buildTestApp({ databasePath }, { autoStart: false })
    app = second.app
    await waitFor(() => count('deliveries') === 1, { what: 'retention at start' })
    expect(deliveryEventIds()).toEqual([keep])
    const stop = vi.spyOn(app.pipeline.retention, 'stop')
    await app.close()
    expect(stop).toHaveBeenCalledTimes(1)
  })
})
