/**
 * Tags mapped by name hold the tag Kit gave them on every instance sharing one PostgreSQL
 * database: one instance creates and holds them, another, which has never read Kit's tag list
 * before the tags were renamed in Kit, applies the same tags. Skipped without PostgreSQL (fails in CI).
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import type { Config } from '../server/config.ts'
import { startKitStandin, type KitStandin } from './kit-standin/server.ts'
import { buildTestApp } from './helpers/app.ts'
import { makeEvent, postEvent, waitFor, type EventInput } from './helpers/events.ts'
import { asA, FAST_RETRY, KEY } from './helpers/pipeline.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'

const pgUp = await postgresAvailable()

let kit: KitStandin | undefined
let database: TestDatabase | undefined
const apps: FastifyInstance[] = []

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
  await kit?.close()
  await database?.drop()
  kit = undefined
  database = undefined
})

describe.skipIf(!pgUp)('held tags on several instances', () => {
  it('an instance applies the tags another created and held, after they were renamed in Kit, and creates none again', async () => {
    kit = await startKitStandin({ apiKeys: [KEY], listLagMs: 0 })
    database = await createTestDatabase('kitheld')
    const secret = randomBytes(32).toString('base64')
    const shared: Partial<Config> = {
      kitApiUrl: kit.url,
      databaseUrl: database.url,
      databasePoolSize: 3,
      eventsSecrets: [secret],
      encryptionKeys: [{ id: 'test', key: randomBytes(32) }],
      apiRateLimit: 10_000,
    }
    const start = async () => {
      const { app } = await buildTestApp(shared, { retry: FAST_RETRY })
      apps.push(app)
      return app
    }
    const settle = async (app: FastifyInstance, input: EventInput) => {
      const event = makeEvent(input)
      expect((await postEvent(app, secret, event)).statusCode).toBe(202)
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
      const account = (kit as KitStandin).account(KEY)
      const s = account.subscribers.find((x) => x.email_address === email)
      return s ? [...s.tags].map((id) => account.tags.find((t) => t.id === id)?.name ?? `#${id}`).sort() : []
    }

    const a = await start()
    expect((await a.inject({ method: 'PUT', url: '/api/v1/connection', headers: asA, payload: { api_key: KEY } })).statusCode).toBe(200)
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
    const sql = new pg.Client({ connectionString: database.url })
    await sql.connect()
    await sql.query('UPDATE kit_tags SET learnt_at = learnt_at - 3600000')
    await sql.end()
    // Another instance, whose first read of Kit's tags sees only the new names; the first one stops.
    const b = await start()
    await a.close()
    apps.splice(apps.indexOf(a), 1)
    const tags = account.tags.length

    expect(await settle(b, { ...m, type: 'access.revoked', access: { level: 'gold' } })).toMatchObject({ status: 'succeeded', last_error: null })
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
