/**
 * The mappings' history through the real app: every owner's save is kept with the session token's
 * `sub`, its time and the change in words; any earlier version can be read and restored (a restore
 * is itself a save); another community never sees or restores them; the plugin's own edits make no
 * version; retention keeps RETENTION_DAYS or the newest 100.
 */
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { MappingHistoryPage, Mappings } from '#shared/api.ts'
import { defaultMappings } from '#shared/defaults.ts'
import { buildTestApp } from './helpers/app.ts'
import { sessionFor } from './helpers/tokens.ts'

const DAY = 24 * 60 * 60_000

let app: FastifyInstance

beforeEach(async () => {
  ;({ app } = await buildTestApp({ retentionDays: 30 }, { autoStart: false }))
})
afterEach(async () => {
  await app.close()
})

const ada = sessionFor('c_alpha', { claims: { sub: 'u_ada' } })
const ben = sessionFor('c_alpha', { claims: { sub: 'u_ben' } })
const bravo = sessionFor('c_bravo', { claims: { sub: 'u_bravo' } })

type Session = typeof ada

const getMappings = async (as: Session): Promise<Mappings> =>
  (await app.inject({ method: 'GET', url: '/api/v1/mappings', headers: as })).json()
const history = async (as: Session, query = ''): Promise<MappingHistoryPage> => {
  const res = await app.inject({ method: 'GET', url: `/api/v1/mappings/history${query}`, headers: as })
  expect(res.statusCode).toBe(200)
  return res.json()
}
const restore = (as: Session, version: number | string) =>
  app.inject({ method: 'POST', url: `/api/v1/mappings/history/${version}/restore`, headers: as })

/** Ada adds "VIP" to sign-ups with a PUT, then Ben turns on unsubscribing deleted members with a PATCH. */
async function twoSaves(): Promise<{ before: Mappings; first: Mappings; second: Mappings }> {
  const before = await getMappings(ada)
  const first = await getMappings(ada)
  first.events['user.signed_up']!.add_tags.push({ name: 'VIP' })
  expect((await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: ada, payload: first })).statusCode).toBe(200)
  const deleted = { ...first.events['user.deleted']!, unsubscribe: true }
  const patched = await app.inject({
    method: 'PATCH',
    url: '/api/v1/mappings',
    headers: ben,
    payload: { events: { 'user.deleted': deleted } },
  })
  expect(patched.statusCode).toBe(200)
  return { before, first, second: patched.json() }
}

describe('the mappings history', () => {
  it('is empty until the first save', async () => {
    expect(await history(ada)).toEqual({ items: [], next_cursor: null })
  })

  it("keeps each save with the token's sub, its time and the change in words, newest first, over version 0", async () => {
    const started = Date.now()
    await twoSaves()
    const { items, next_cursor } = await history(ada)
    expect(next_cursor).toBeNull()
    expect(items.map(({ saved_at: _, ...item }) => item)).toEqual([
      { version: 2, saved_by: 'u_ben', change: 'Member account is deleted now unsubscribes', restored_from: null },
      { version: 1, saved_by: 'u_ada', change: 'added tag "VIP" to Member signs up', restored_from: null },
      { version: 0, saved_by: null, change: 'the defaults, before the first save', restored_from: null },
    ])
    for (const item of items) expect(Date.parse(item.saved_at)).toBeGreaterThanOrEqual(started - 1000)
  })

  it('answers the document each version saved, version 0 being the defaults in force before', async () => {
    const { before, first, second } = await twoSaves()
    const version = async (n: number) => (await app.inject({ method: 'GET', url: `/api/v1/mappings/history/${n}`, headers: ada })).json()
    expect(before.events['user.signed_up']).toEqual(defaultMappings().events['user.signed_up'])
    expect(await version(0)).toEqual(before)
    expect(await version(1)).toEqual(first)
    expect(await version(2)).toEqual(second)
  })

  it('restores an earlier version as a new version holding that document, saying what it changed and which it restored', async () => {
    const { before } = await twoSaves()
    const res = await restore(ben, 0)
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual(before)
    expect(await getMappings(ada)).toEqual(before)
    const [newest] = (await history(ada)).items
    expect(newest).toMatchObject({
      version: 3,
      saved_by: 'u_ben',
      restored_from: 0,
      change: 'removed tag "VIP" from Member signs up; Member account is deleted no longer unsubscribes',
    })
    expect((await app.inject({ method: 'GET', url: '/api/v1/mappings/history/3', headers: ada })).json()).toEqual(before)
  })

  it('restores what was in place right after the very first save, a document stored before history was kept included', async () => {
    const stored = defaultMappings()
    stored.events['user.updated'] = {
      add_tags: [{ name: 'Profile changed' }],
      remove_tags: [],
      add_to_forms: [],
      add_to_sequences: [],
      unsubscribe: false,
    }
    app.sqlite
      .prepare('INSERT INTO mappings (community_id, document, updated_at) VALUES (?, ?, ?)')
      .run('c_alpha', JSON.stringify(stored), '2026-01-05T10:00:00.000Z')
    const doc = await getMappings(ada)
    doc.events['user.updated']!.add_tags = []
    await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: ada, payload: doc })

    const { items } = await history(ada)
    expect(items.at(-1)).toEqual({
      version: 0,
      saved_by: null,
      saved_at: '2026-01-05T10:00:00.000Z',
      change: 'the mappings in place before the first save',
      restored_from: null,
    })
    expect((await restore(ada, 0)).statusCode).toBe(200)
    expect((await getMappings(ada)).events['user.updated']!.add_tags).toEqual([{ name: 'Profile changed' }])
    expect((await history(ada)).items[0]).toMatchObject({
      version: 2,
      change: 'added tag "Profile changed" to Member updates their profile',
      restored_from: 0,
    })
  })

  it('pages newest first with next_cursor', async () => {
    await twoSaves()
    await restore(ada, 1)
    const first = await history(ada, '?limit=3')
    expect(first.items.map((v) => v.version)).toEqual([3, 2, 1])
    expect(first.next_cursor).toEqual(expect.any(String))
    const second = await history(ada, `?limit=3&cursor=${first.next_cursor}`)
    expect(second).toMatchObject({ items: [{ version: 0 }], next_cursor: null })
  })

  it("keeps no version for the plugin's own edits (ids Kit gave), and the next save's words ignore them", async () => {
    await twoSaves()
    await app.services.mappings.holdTagId('c_alpha', 'VIP', 4242)
    expect((await getMappings(ada)).events['user.signed_up']!.add_tags).toContainEqual({ id: 4242, name: 'VIP' })
    expect((await history(ada)).items.map((v) => v.version)).toEqual([2, 1, 0])
    const doc = await getMappings(ada)
    doc.events['user.signed_up']!.unsubscribe = false
    doc.fields.push({ source: 'mk_country', kit_field: { key: 'country', label: 'Country' } })
    await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: ada, payload: doc })
    expect((await history(ada)).items[0]).toMatchObject({ version: 3, change: 'mapped mk_country to Kit field "Country"' })
  })

  it('refuses to restore a version that no longer passes the checks a save must pass, saving nothing', async () => {
    await twoSaves()
    const broken = defaultMappings()
    broken.events['user.signed_up']!.add_tags = [{ name: 'Line\nbreak' }]
    app.sqlite
      .prepare(
        `INSERT INTO mapping_versions (community_id, version, document, saved_by, saved_at, change, restored_from) VALUES ('c_alpha', 3, ?, 'u_old', ?, 'old', NULL)`,
      )
      .run(JSON.stringify(broken), Date.now())
    const res = await restore(ada, 3)
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({ code: 'invalid_mappings', message: expect.stringMatching(/add_tags\[0\]\.name/) })
    expect((await history(ada)).items.map((v) => v.version)).toEqual([3, 2, 1, 0])
  })

  it('answers 404 for a version never saved, and 400 for one that is not a version number or a cursor it never gave', async () => {
    await twoSaves()
    expect((await app.inject({ method: 'GET', url: '/api/v1/mappings/history/99', headers: ada })).statusCode).toBe(404)
    expect((await restore(ada, 99)).json().error.code).toBe('not_found')
    for (const bad of ['abc', '-1', '1.5']) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/mappings/history/${bad}`, headers: ada })
      expect(res.statusCode, bad).toBe(400)
      expect((await restore(ada, bad)).statusCode, bad).toBe(400)
    }
    const cursor = await app.inject({ method: 'GET', url: '/api/v1/mappings/history?cursor=bm9wZQ', headers: ada })
    expect(cursor.statusCode).toBe(400)
    expect(cursor.json().error.message).toMatch(/cursor/)
  })

  it('requires a session token', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/mappings/history'],
      ['GET', '/api/v1/mappings/history/0'],
      ['POST', '/api/v1/mappings/history/0/restore'],
    ] as const) {
      expect((await app.inject({ method, url })).statusCode, url).toBe(401)
    }
  })
})

describe('another community', () => {
  it('never sees, reads or restores these versions, and keeps its own history apart', async () => {
    const { second } = await twoSaves()
    expect(await history(bravo)).toEqual({ items: [], next_cursor: null })
    for (const n of [0, 1, 2]) {
      expect((await app.inject({ method: 'GET', url: `/api/v1/mappings/history/${n}`, headers: bravo })).statusCode).toBe(404)
      expect((await restore(bravo, n)).statusCode).toBe(404)
    }
    expect(await getMappings(ada)).toEqual(second)

    const own = await getMappings(bravo)
    own.events['access.granted']!.unsubscribe = true
    await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: bravo, payload: own })
    expect((await history(bravo)).items.map((v) => [v.version, v.saved_by])).toEqual([
      [1, 'u_bravo'],
      [0, null],
    ])
    expect((await history(ada)).items.map((v) => v.version)).toEqual([2, 1, 0])
  })
})

describe('retention of the history', () => {
  /** Versions `from`…`to` of a community, saved `daysAgo` days ago. */
  function stored(communityId: string, from: number, to: number, daysAgo: number): void {
    const insert = app.sqlite.prepare(
      `INSERT INTO mapping_versions (community_id, version, document, saved_by, saved_at, change, restored_from) VALUES (?, ?, '{}', 'u_ada', ?, 'a change', NULL)`,
    )
    app.sqlite.transaction(() => {
      for (let v = from; v <= to; v++) insert.run(communityId, v, Date.now() - daysAgo * DAY)
    })()
  }
  const versions = (communityId: string) =>
    app.sqlite.prepare('SELECT version FROM mapping_versions WHERE community_id = ? ORDER BY version').pluck().all(communityId) as number[]

  it('deletes versions older than RETENTION_DAYS, but always keeps the newest 100 of each community', async () => {
    stored('c_alpha', 0, 119, 40)
    stored('c_alpha', 120, 124, 2)
    stored('c_bravo', 0, 59, 400)
    stored('c_charlie', 0, 149, 5)
    const result = await app.pipeline.retention.run()
    expect(result.versions).toBe(25)
    expect(versions('c_alpha')).toEqual(Array.from({ length: 100 }, (_, i) => 25 + i))
    expect(versions('c_bravo')).toHaveLength(60)
    expect(versions('c_charlie')).toHaveLength(150)
    const metrics = (await app.inject('/metrics')).body
    expect(metrics).toMatch(/kit_retention_deleted_total\{table="mapping_versions"\} 25/)
  })

  it('leaves a kept version restorable, and numbers the next save after the newest', async () => {
    stored('c_alpha', 0, 104, 40)
    await app.pipeline.retention.run()
    expect(versions('c_alpha')[0]).toBe(5)
    app.sqlite
      .prepare(`INSERT INTO mappings (community_id, document, updated_at) VALUES ('c_alpha', ?, ?)`)
      .run(JSON.stringify(defaultMappings()), new Date().toISOString())
    const doc = await getMappings(ada)
    doc.events['user.deleted']!.unsubscribe = true
    await app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: ada, payload: doc })
    expect((await history(ada)).items[0]).toMatchObject({ version: 105, saved_by: 'u_ada' })
  })
})

describe('the OpenAPI description', () => {
  it('describes listing, reading and restoring versions', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/openapi.json' })).json()
    expect(doc.paths['/api/v1/mappings/history']?.get?.operationId).toBe('listMappingVersions')
    expect(doc.paths['/api/v1/mappings/history/{version}']?.get?.operationId).toBe('getMappingVersion')
    expect(Object.keys(doc.paths['/api/v1/mappings/history/{version}/restore']?.post?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '400', '401', '404', '409']),
    )
  })
})
