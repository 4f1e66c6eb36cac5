/**
 * U+0000 (NUL) cannot be stored in a PostgreSQL text column, and no id, type or name needs it: a
 * request carrying one anywhere is refused with 400 before it reaches storage, an event holding one
 * is an invalid event, and a member file's member holding one is refused on its own — alike on
 * SQLite and on PostgreSQL (where it used to be a 500).
 */
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeEvent, signedHeaders } from './helpers/events.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'
import { postgresAvailable } from './helpers/postgres.ts'
import { auth, signToken } from './helpers/tokens.ts'

const pgUp = await postgresAvailable()
const NUL = '\u0000'

const dialects: [string, boolean][] = [['SQLite', false], ...(pgUp ? [['PostgreSQL', true] as [string, boolean]] : [])]

describe.each(dialects)('NUL characters on %s', (_name, postgres) => {
  let h: PipelineHarness
  let app: FastifyInstance

  beforeEach(async () => {
    h = await PipelineHarness.start({ ...(postgres ? { postgres: 'kitnul' } : {}), pipeline: { autoStart: false }, connected: true })
    app = h.app
  })
  afterEach(async () => {
    await h.close()
  })

  const expectNulRefusal = (res: { statusCode: number; json: () => unknown }, what: string) => {
    expect(res.statusCode, what).toBe(400)
    expect((res.json() as { error: { code: string } }).error.code, what).toBe('nul_character')
  }

  const deliveryCount = async () => {
    const page = (await app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=200', headers: asA })).json() as { items: unknown[] }
    return page.items.length
  }

  it('refuses %00 in a path id or a query value with 400', async () => {
    for (const url of [
      '/api/v1/syncs/s%00x',
      '/api/v1/syncs/%00',
      '/api/v1/deliveries?member=a%00b',
      '/api/v1/deliveries?cursor=%00',
      '/api/v1/deliveries/d%00/retry',
      '/api/v1/kit/tags?q=%00',
      '/nowhere%00',
    ]) {
      const method = url.endsWith('/retry') ? 'POST' : 'GET'
      expectNulRefusal(await app.inject({ method, url, headers: asA }), url)
    }
    // An escaped percent sign is a literal "%00", not a NUL.
    expect((await app.inject({ method: 'GET', url: '/api/v1/deliveries?member=a%2500b', headers: asA })).statusCode).toBe(200)
  })

  it('refuses a JSON body holding a NUL in any string or key, changing nothing', async () => {
    const before = (await app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json() as Record<string, unknown>
    for (const [method, url, payload] of [
      ['PATCH', '/api/v1/mappings', { 'user.signed_up': { tags_add: [{ name: `Member${NUL}` }] } }],
      ['PATCH', '/api/v1/mappings', { [`user.signed${NUL}up`]: { tags_add: [] } }],
      ['POST', '/api/v1/deliveries/retry', { status: 'skipped', reason: `not_connected${NUL}` }],
      ['PUT', '/api/v1/connection', { api_key: `${KEY}${NUL}` }],
    ] as const) {
      expectNulRefusal(await app.inject({ method, url, headers: asA, payload: payload as Record<string, unknown> }), `${method} ${url}`)
    }
    expect((await app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()).toEqual(before)
    const named = await app.inject({
      method: 'PATCH',
      url: '/api/v1/mappings',
      headers: asA,
      payload: { 'user.signed_up': { tags_add: [{ name: `M${NUL}` }] } },
    })
    expect((named.json() as { error: { message: string } }).error.message).toContain('body.user.signed_up.tags_add[0].name')
  })

  it('refuses a session token whose community or user holds a NUL', async () => {
    for (const claims of [{ cid: `c_alpha${NUL}` }, { sub: `u${NUL}` }]) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/deliveries', headers: auth(signToken({ claims })) })
      expect(res.statusCode, JSON.stringify(claims)).toBe(401)
      expect((res.json() as { error: { code: string } }).error.code).toBe('invalid_session')
    }
  })

  it('refuses a signed event holding a NUL in its type, community, ids or any value as invalid_event, storing nothing', async () => {
    const events = [
      { ...makeEvent(), type: `user.signed${NUL}up` },
      { ...makeEvent(), communityid: `c_alpha${NUL}` },
      makeEvent({ memberId: `m${NUL}x` }),
      makeEvent({ type: 'subscription.started', subscription: { id: `s${NUL}`, plan: 'pro' } }),
      makeEvent({ fields: { mk_city: `Ber${NUL}lin` } }),
      makeEvent({ firstName: `Ada${NUL}` }),
    ]
    const id = `evt_nul${NUL}x`
    events.push({ ...makeEvent(), id })
    for (const event of events) {
      const res =
        event.id === id
          ? await app.inject({
              method: 'POST',
              url: '/events',
              payload: JSON.stringify(event),
              headers: signedHeaders(JSON.stringify(event), { secret: h.secret, id: 'evt_nul_header' }),
            })
          : await h.post(event)
      expect(res.statusCode, JSON.stringify(event)).toBe(400)
      expect((res.json() as { error: { code: string } }).error.code).toBe('invalid_event')
    }
    expect(await deliveryCount()).toBe(0)
    // The same events without the NUL are taken.
    expect((await h.post(makeEvent({ memberId: 'm_clean' }))).statusCode).toBe(202)
  })

  it('refuses a member whose member_id or any value holds a NUL in a member file, and takes the others', async () => {
    const jsonl = [
      JSON.stringify({ member_id: `m${NUL}x`, email: 'nul-id@example.com' }),
      JSON.stringify({ member_id: 'm_ok', email: 'ok@example.com' }),
      JSON.stringify({ member_id: 'm_city', email: 'city@example.com', mk_city: `Ber${NUL}lin` }),
      JSON.stringify({ member_id: 'm_plan', email: 'plan@example.com', subscription_plan: `pro${NUL}` }),
    ].join('\n')
    const csv = `member_id,email\nm${NUL}y,nul-csv@example.com\nm_ok2,ok2@example.com\n`
    for (const [type, body, taken] of [
      ['application/x-ndjson', jsonl, 1],
      ['text/csv', csv, 1],
    ] as const) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/syncs?dry_run=true',
        headers: { ...asA, 'content-type': type },
        payload: body,
      })
      expect(res.statusCode, type).toBe(200)
      const preview = res.json() as { accepted: number; refused: number }
      expect(preview.accepted, type).toBe(taken)
      const real = await app.inject({ method: 'POST', url: '/api/v1/syncs', headers: { ...asA, 'content-type': type }, payload: body })
      expect(real.statusCode, type).toBe(202)
      const sync = real.json() as { id: string }
      const read = await app.inject({ method: 'GET', url: `/api/v1/syncs/${sync.id}`, headers: asA })
      expect(read.statusCode).toBe(200)
      const done = read.json() as { total: number; refused: number }
      expect({ total: done.total, refused: done.refused }, type).toEqual({ total: taken, refused: preview.refused })
    }
  })
})
