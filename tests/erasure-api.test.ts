/**
 * The erasure parts of the settings API, through one built app: the "Delete by hand in Kit" list
 * (session required, scoped by community, refusing bad input) and the `erase` mapping option,
 * accepted only on user.deleted.
 */
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildTestApp } from './helpers/app.ts'
import { asA, asB } from './helpers/pipeline.ts'
import { auth, tokenFor } from './helpers/tokens.ts'

let app: FastifyInstance

beforeEach(async () => {
  ;({ app } = await buildTestApp({}, { autoStart: false }))
})
afterEach(async () => {
  await app.close()
})

const list = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/api/v1/erasures', headers })
const done = (memberId: string, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url: `/api/v1/erasures/${encodeURIComponent(memberId)}/done`, headers })

describe('GET /erasures and POST /erasures/{member_id}/done', () => {
  it('lists the members still to delete in Kit, newest first, each with the link to their page in Kit', async () => {
    await app.storage.erasures.record('c_alpha', 'm_old', 1001, Date.parse('2026-12-01T10:00:00Z'))
    await app.storage.erasures.record('c_alpha', 'm_new', 1002, Date.parse('2026-12-02T10:00:00Z'))
    const res = await list(asA)
    expect(res.statusCode).toBe(200)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.json()).toEqual({
      items: [
        { member_id: 'm_new', subscriber_id: 1002, kit_url: 'https://app.kit.com/subscribers/1002', erased_at: '2026-12-02T10:00:00.000Z' },
        { member_id: 'm_old', subscriber_id: 1001, kit_url: 'https://app.kit.com/subscribers/1001', erased_at: '2026-12-01T10:00:00.000Z' },
      ],
    })
  })

  it('takes a member off the list once the owner deleted them in Kit', async () => {
    await app.storage.erasures.record('c_alpha', 'm_1', 1001, 1)
    expect((await done('m_1', asA)).statusCode).toBe(204)
    expect((await list(asA)).json()).toEqual({ items: [] })
    const again = await done('m_1', asA)
    expect(again.statusCode).toBe(404)
    expect(again.json().error.code).toBe('not_found')
  })

  it('another community can neither read nor change the list', async () => {
    await app.storage.erasures.record('c_alpha', 'm_1', 1001, 1)
    expect((await list(asB)).json()).toEqual({ items: [] })
    expect((await done('m_1', asB)).statusCode).toBe(404)
    expect((await list(asA)).json().items).toHaveLength(1)
  })

  it('refuses without a session, without the role, and a member id that is too long', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/erasures' })).statusCode).toBe(401)
    expect((await done('m_1', {})).statusCode).toBe(401)
    expect((await list(auth(tokenFor('c_alpha', ['member'])))).statusCode).toBe(403)
    const long = await done('m'.repeat(101), asA)
    expect(long.statusCode).toBe(400)
    expect(long.json().error.code).toBe('invalid_request')
  })

  it('is described in the OpenAPI document', async () => {
    const doc = app.swagger() as unknown as { paths: Record<string, Record<string, { operationId: string }>> }
    expect(doc.paths['/api/v1/erasures']?.get?.operationId).toBe('listErasures')
    expect(doc.paths['/api/v1/erasures/{member_id}/done']?.post?.operationId).toBe('markErasureDone')
  })
})

describe('the erase mapping option', () => {
  const mappings = async () => (await app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
  const put = (doc: object) => app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
  const patch = (change: object) => app.inject({ method: 'PATCH', url: '/api/v1/mappings', headers: asA, payload: change })
  const deletion = (erase: unknown) => ({
    add_tags: [],
    remove_tags: [],
    add_to_forms: [],
    add_to_sequences: [],
    unsubscribe: false,
    erase,
  })

  it('is saved on user.deleted, and left out of the document when off', async () => {
    const doc = await mappings()
    expect(doc.events['user.deleted'].erase).toBeUndefined()
    doc.events['user.deleted'] = deletion(true)
    const saved = await put(doc)
    expect(saved.statusCode).toBe(200)
    expect(saved.json().events['user.deleted'].erase).toBe(true)
    expect((await mappings()).events['user.deleted'].erase).toBe(true)
    const off = await patch({ events: { 'user.deleted': deletion(false) } })
    expect(off.statusCode).toBe(200)
    expect('erase' in off.json().events['user.deleted']).toBe(false)
  })

  it('is refused on any other event, naming the path, and nothing is saved', async () => {
    const doc = await mappings()
    doc.events['user.updated'] = { ...doc.events['user.updated'], erase: true }
    const res = await put(doc)
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('invalid_mappings')
    expect(res.json().error.message).toMatch(/^events\.user\.updated\.erase is only for user\.deleted/)
    const patched = await patch({ events: { 'access.revoked': deletion(false) } })
    expect(patched.statusCode).toBe(400)
    expect(patched.json().error.message).toMatch(/^events\.access\.revoked\.erase/)
    expect((await mappings()).events['user.updated'].erase).toBeUndefined()
  })

  it('must be true or false', async () => {
    const res = await patch({ events: { 'user.deleted': deletion('yes') } })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(/erase/)
  })
})
