/**
 * Tags mapped by name hold the tag Kit gave them on every instance sharing one PostgreSQL
 * database: one instance creates and holds them, another, which has never read Kit's tag list
 * before the tags were renamed in Kit, applies the same tags. Skipped without PostgreSQL (fails in CI).
 */
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { makeEvent, postEvent, waitFor, type EventInput } from './helpers/events.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()

let h: PipelineHarness | undefined

afterEach(async () => {
  await h?.close()
  h = undefined
})

describe.skipIf(!pgUp)('held tags on several instances', () => {
  it('an instance applies the tags another created and held, after they were renamed in Kit, and creates none again', async () => {
    const cluster = await PipelineHarness.start({
      kit: { listLagMs: 0 },
      postgres: 'kitheld',
      config: { apiRateLimit: 10_000 },
      connected: true,
    })
    h = cluster
    const kit = cluster.kit
    const settle = async (app: FastifyInstance, input: EventInput) => {
      const event = makeEvent(input)
      expect((await postEvent(app, cluster.secret, event)).statusCode).toBe(202)
      return waitFor(
        async () => {
          const page = (await app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=100', headers: asA })).json() as {
            items: { event_id: string; status: string; last_error: string | null }[]
          }
          const d = page.items.find((item) => item.event_id === event.id)
          return d && ['succeeded', 'failed', 'skipped'].includes(d.status) ? d : undefined
        },
        { what: `delivery of ${String(event.id)}`, timeoutMs: 20_000 },
      )
    }
    const tagNames = (email: string) => {
      const account = kit.account(KEY)
      const s = account.subscribers.find((x) => x.email_address === email)
      return s ? [...s.tags].map((id) => account.tags.find((t) => t.id === id)?.name ?? `#${id}`).sort() : []
    }

    const a = cluster.app
    const m = { memberId: 'm_pg', email: 'pg@example.com' }
    const subscription = { id: 's_pg', plan: 'pro', status: 'active' }
    expect(await settle(a, { ...m, type: 'subscription.started', subscription })).toMatchObject({ status: 'succeeded' })
    expect(await settle(a, { ...m, type: 'access.granted', access: { level: 'gold' } })).toMatchObject({ status: 'succeeded' })
    expect(tagNames('pg@example.com')).toEqual(['Access: gold', 'Active Member'])

    const account = kit.account(KEY)
    const active = account.tags.find((t) => t.name === 'Active Member')!
    const gold = account.tags.find((t) => t.name === 'Access: gold')!
    kit.renameTag(KEY, active.id, 'Members')
    kit.renameTag(KEY, gold.id, 'Gold')
    // A's tags were learnt an hour ago, so the registry of recently learnt tag names (which covers
    // instances' stale lists for a few seconds) has nothing to say about them.
    const sql = new pg.Client({ connectionString: cluster.databaseUrl! })
    await sql.connect()
    await sql.query('UPDATE kit_tags SET learnt_at = learnt_at - 3600000')
    await sql.end()
    // Another instance, whose first read of Kit's tags sees only the new names; the first one stops.
    const b = await cluster.addInstance()
    await cluster.stopInstance(a)
    const tags = account.tags.length

    expect(await settle(b, { ...m, type: 'access.revoked', access: { level: 'gold' } })).toMatchObject({
      status: 'succeeded',
      last_error: null,
    })
    expect(await settle(b, { ...m, type: 'subscription.canceled', subscription: { ...subscription, status: 'canceled' } })).toMatchObject({
      status: 'succeeded',
      last_error: null,
    })
    expect(tagNames('pg@example.com')).toEqual(['Cancelled'])
    const other = { memberId: 'm_pg2', email: 'pg2@example.com' }
    expect(await settle(b, { ...other, type: 'subscription.started' })).toMatchObject({ status: 'succeeded' })
    expect(await settle(b, { ...other, type: 'access.granted', access: { level: 'gold' } })).toMatchObject({ status: 'succeeded' })
    expect(tagNames('pg2@example.com')).toEqual(['Gold', 'Members'])
    // Only "Cancelled" was new.
    expect(account.tags.length).toBe(tags + 1)
    const doc = (await b.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    expect(doc.events['subscription.canceled'].remove_tags).toEqual([{ id: active.id, name: 'Active Member' }])
  }, 60_000)
})
