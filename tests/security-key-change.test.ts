import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { EncryptionKey, KeyRing } from '../server/lib/crypto.ts'
import { buildTestApp } from './helpers/app.ts'
import { makeEvent, waitFor } from './helpers/events.ts'
import { asA, KEY, PipelineHarness } from './helpers/pipeline.ts'

const UNREADABLE = /The saved Kit key can no longer be read — paste the key again/

let h: PipelineHarness
const oldKey: EncryptionKey = { id: 'old', key: randomBytes(32) }
const newKey: EncryptionKey = { id: 'new', key: randomBytes(32) }
const ring = (...keys: EncryptionKey[]) => keys as unknown as KeyRing

/** Each test starts on a database file of its own, sealed with the old key. */
beforeEach(async () => {
  const databasePath = join(mkdtempSync(join(tmpdir(), 'kit-keys-')), 'kit.sqlite')
  h = await PipelineHarness.start({ config: { databasePath, encryptionKeys: ring(oldKey) } })
})
afterEach(async () => {
  await h.close()
})

/** The app on the same database file, as after a restart with another ENCRYPTION_KEY. */
async function start(...keys: EncryptionKey[]): Promise<FastifyInstance> {
  await h.restart({ encryptionKeys: ring(...keys) })
  return h.app
}

const ciphertext = (a: FastifyInstance) =>
  (a.sqlite.prepare("SELECT api_key_ciphertext AS c FROM connections WHERE community_id = 'c_alpha'").get() as { c: string }).c
const deliveryOf = (a: FastifyInstance, eventId: string) =>
  a.sqlite.prepare('SELECT status, last_error, reason FROM deliveries WHERE event_id = ?').get(eventId) as
    { status: string; last_error: string | null; reason: string | null } | undefined

describe('a changed ENCRYPTION_KEY', () => {
  it('turns the connection invalid with a message to paste the key again, never a 500', async () => {
    await h.connect()
    const a = await start(newKey)
    const connection = await a.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })
    expect(connection.statusCode).toBe(200)
    expect(connection.json()).toMatchObject({
      connected: false,
      status: 'invalid',
      key_hint: '…0001',
      message: expect.stringMatching(UNREADABLE),
    })
    for (const url of ['/api/v1/kit/tags', '/api/v1/kit/forms']) {
      const res = await a.inject({ method: 'GET', url, headers: asA })
      expect(res.statusCode, url).toBe(409)
      expect(res.json().error).toMatchObject({ code: 'connection_invalid', message: expect.stringMatching(UNREADABLE) })
    }
    const test = await a.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })
    expect(test.json()).toMatchObject({ ok: false, error: { code: 'connection_invalid', message: expect.stringMatching(UNREADABLE) } })
    expect(h.logs.join('\n')).toMatch(/cannot be decrypted with ENCRYPTION_KEY/)
    expect(h.logs.join('\n')).not.toContain(KEY)
  })

  it("holds the community's deliveries like a rejected key, and resumes them once the key is pasted again", async () => {
    await h.connect()
    const a = await start(newKey)
    const requestsBefore = h.kit.requests.length
    const event = makeEvent({ type: 'user.signed_up', communityId: 'c_alpha', memberId: 'm_rot', email: 'rot@example.com' })
    expect((await h.post(event)).statusCode).toBe(202)
    const held = await waitFor(
      () => {
        const d = deliveryOf(a, event.id as string)
        return d?.reason === 'key_unreadable' ? d : undefined
      },
      { what: 'held delivery' },
    )
    expect(held.status).toBe('held')
    const listed = (await a.inject({ method: 'GET', url: '/api/v1/deliveries', headers: asA })).json().items[0]
    expect(listed).toMatchObject({ status: 'pending', reason: 'key_unreadable' })
    expect(h.kit.requests.length).toBe(requestsBefore)

    await h.connect()
    await waitFor(() => deliveryOf(a, event.id as string)?.status === 'succeeded', { what: 'resumed delivery' })
    expect((await a.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()).toMatchObject({ status: 'connected' })
    expect((await a.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()).not.toHaveProperty('message')
  })
})

describe('rotating ENCRYPTION_KEY', () => {
  it('keeps a key sealed with an older key working, seals it again with the newest at start, then the older key can go', async () => {
    const first = h.app
    await h.connect()
    expect(ciphertext(first).split('.').slice(0, 2)).toEqual(['v2', 'old'])

    const rotated = await start(newKey, oldKey)
    expect(ciphertext(rotated).split('.').slice(0, 2)).toEqual(['v2', 'new'])
    expect((await rotated.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()).toMatchObject({ status: 'connected' })
    expect((await rotated.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })).statusCode).toBe(200)

    const onlyNew = await start(newKey)
    expect((await onlyNew.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })).statusCode).toBe(200)
    expect((await onlyNew.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()).toMatchObject({ status: 'connected' })
  })

  it('keeps the credential id a stored connection was saved with, so its budget and caches stay the same', async () => {
    await h.connect()
    const id = () =>
      (h.app.sqlite.prepare("SELECT credential_id AS id FROM connections WHERE community_id = 'c_alpha'").get() as { id: string }).id
    const saved = id()
    expect(saved).toMatch(/^[0-9a-f]{32}$/)
    const rotated = await start(newKey, oldKey)
    expect(id()).toBe(saved)
    const event = makeEvent({ type: 'user.signed_up', communityId: 'c_alpha', memberId: 'm_same', email: 'same@example.com' })
    expect((await h.post(event)).statusCode).toBe(202)
    await waitFor(() => deliveryOf(rotated, event.id as string)?.status === 'succeeded', { what: 'delivery' })
    const cached = rotated.sqlite.prepare("SELECT credential_id AS id FROM kit_subscribers WHERE member_id = 'm_same'").get() as {
      id: string
    }
    expect(cached.id).toBe(saved)
  })
})

describe('credential ids', () => {
  it('are an HMAC under a server key, not a bare hash of the API key', async () => {
    const { createHash } = await import('node:crypto')
    await h.connect()
    const a = h.app
    const row = a.sqlite.prepare("SELECT credential_id AS id FROM connections WHERE community_id = 'c_alpha'").get() as { id: string }
    const bareHash = createHash('sha256').update(KEY, 'utf8').digest('hex')
    expect(bareHash.startsWith(row.id)).toBe(false)
    expect(row.id).toBe(a.kit.credentialIdFor(KEY))
    const other = await buildTestApp({ encryptionKeys: [newKey] })
    try {
      expect(other.app.kit.credentialIdFor(KEY)).not.toBe(row.id)
    } finally {
      await other.app.close()
    }
  })
})
