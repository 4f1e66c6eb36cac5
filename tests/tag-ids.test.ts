import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KEY, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness
const dirs: string[] = []

afterEach(async () => {
  await h.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const tagCount = () => h.kit.account(KEY).tags.length
const stepsOf = (eventId: string) => JSON.parse(h.delivery(eventId)!.steps) as { action: string; target: string | null; detail: string | null }[]

/** Maps access.granted to add, and access.revoked to remove, the tag picked by id. */
async function mapPickedTag(tag: { id: number; name: string }) {
  await h.putMappings((doc) => {
    doc.events['access.granted'].add_tags = [{ id: tag.id, name: tag.name }]
    doc.events['access.revoked'].remove_tags = [{ id: tag.id, name: tag.name }]
  })
}

describe('tags picked in the panel are applied by their id', () => {
  it('adds and removes a tag renamed in Kit by its stored id after a restart, creating no duplicate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-tag-ids-'))
    dirs.push(dir)
    h = await PipelineHarness.start({ config: { databasePath: join(dir, 'kit.sqlite') } })
    h.kit.seed(KEY, { tags: ['VIP'] })
    await h.connect()
    const vip = h.tag('VIP')
    await mapPickedTag(vip)
    const m = { memberId: 'm_vip', email: 'vip@example.com', access: { level: 'gold' } }
    expect((await h.settled(await h.send({ ...m, type: 'user.signed_up' }))).status).toBe('succeeded')

    h.kit.renameTag(KEY, vip.id, 'VIP Gold')
    await h.restart()
    const tags = tagCount()

    const granted = await h.settled(await h.send({ ...m, type: 'access.granted' }))
    expect(granted).toMatchObject({ status: 'succeeded', last_error: null })
    expect(h.tagNames('vip@example.com')).toEqual(['New Member', 'VIP Gold'])
    const revoked = await h.settled(await h.send({ ...m, type: 'access.revoked' }))
    expect(revoked).toMatchObject({ status: 'succeeded', last_error: null })
    expect(h.tagNames('vip@example.com')).toEqual(['New Member'])
    expect(tagCount()).toBe(tags)
    expect(h.kit.account(KEY).tags.map((t) => t.name)).not.toContain('VIP')
  })

  it('fails an add naming the tag when its stored id was deleted in Kit, and recreates nothing', async () => {
    h = await PipelineHarness.start()
    h.kit.seed(KEY, { tags: ['VIP'] })
    await h.connect()
    const vip = h.tag('VIP')
    await mapPickedTag(vip)
    const m = { memberId: 'm_gone', email: 'gone@example.com', access: { level: 'gold' } }
    await h.settled(await h.send({ ...m, type: 'user.signed_up' }))
    h.kit.deleteTag(KEY, vip.id)

    const granted = await h.settled(await h.send({ ...m, type: 'access.granted' }))
    expect(granted.status).toBe('failed')
    expect(granted.last_error).toBe(
      `Subscriber updated, fields written (Access level); tag "VIP" (id ${vip.id}) no longer exists in Kit: pick it again in the access.granted mapping, then Retry.`,
    )
    expect(h.kit.account(KEY).tags.map((t) => t.name)).toEqual(['New Member'])
  })

  it('removing a tag whose stored id was deleted in Kit succeeds with a warning that says so', async () => {
    h = await PipelineHarness.start()
    h.kit.seed(KEY, { tags: ['VIP'] })
    await h.connect()
    const vip = h.tag('VIP')
    await mapPickedTag(vip)
    const m = { memberId: 'm_gone2', email: 'gone2@example.com', access: { level: 'gold' } }
    await h.settled(await h.send({ ...m, type: 'access.granted' }))
    expect(h.tagNames('gone2@example.com')).toEqual(['VIP'])
    h.kit.deleteTag(KEY, vip.id)

    const eventId = await h.send({ ...m, type: 'access.revoked' })
    const revoked = await h.settled(eventId)
    expect(revoked.status).toBe('succeeded')
    const warning = `Tag "VIP" (id ${vip.id}) no longer exists in Kit, so there was nothing to remove: pick it again in the access.revoked mapping.`
    expect(revoked.last_error).toBe(warning)
    expect(stepsOf(eventId)).toEqual([
      { action: 'subscriber.unchanged', target: 'gone2@example.com', detail: null },
      { action: 'warning', target: 'VIP', detail: warning },
    ])
    expect(h.kit.account(KEY).tags).toHaveLength(0)
  })
})

describe('cached tag and field ids are dropped when Kit shows they are out of date', () => {
  it('reads the tag list again within the same delivery when Kit no longer knows a cached tag id', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_t1', email: 't1@example.com' }))
    // The tag is deleted and made again in Kit: same name, new id.
    h.kit.deleteTag(KEY, h.tag('New Member').id)
    h.kit.seed(KEY, { tags: ['New Member'] })

    const before = h.kit.requests.length
    const d = await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_t2', email: 't2@example.com' }))
    expect(d).toMatchObject({ status: 'succeeded', attempts: 1 })
    expect(h.callsSince(before)).toEqual([
      'POST /v4/subscribers 201',
      'POST /v4/tags/:id/subscribers/:id 404',
      'GET /v4/tags 200',
      'POST /v4/tags/:id/subscribers/:id 201',
    ])
    expect(h.tagNames('t2@example.com')).toEqual(['New Member'])
  })

  it('treats a 422 that speaks of the tag like a 404: reads the list again and tags with Kit\'s current id', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_u1', email: 'u1@example.com' }))
    h.kit.deleteTag(KEY, h.tag('New Member').id)
    h.kit.seed(KEY, { tags: ['New Member'] })
    const before = h.kit.requests.length
    // The member is known and unchanged, so the tag call is the first request.
    h.kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: ['Tag not found'] }) })
    const d = await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_u1', email: 'u1@example.com' }))
    expect(d).toMatchObject({ status: 'succeeded', attempts: 1 })
    expect(h.callsSince(before)).toEqual(['POST /v4/tags/:id/subscribers/:id 422', 'GET /v4/tags 200', 'POST /v4/tags/:id/subscribers/:id 201'])
    expect(h.tagNames('u1@example.com')).toEqual(['New Member'])
  })

  it('drops the cached list when creating a tag finds it already in Kit, so the next lookup sees Kit\'s changes', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.settled(await h.send({ type: 'access.granted', memberId: 'm_c1', email: 'c1@example.com', access: { level: 'gold' } }))
    // In Kit, "Access: gold" is renamed to "Access: platinum" and a new "Access: gold" is made.
    const gold = h.tag('Access: gold')
    h.kit.renameTag(KEY, gold.id, 'Access: platinum')
    h.kit.seed(KEY, { tags: ['Access: gold'] })

    const platinum = await h.settled(await h.send({ type: 'access.granted', memberId: 'm_c2', email: 'c2@example.com', access: { level: 'platinum' } }))
    expect(platinum.status).toBe('succeeded')
    expect(h.tagNames('c2@example.com')).toEqual(['Access: platinum'])
    const again = await h.settled(await h.send({ type: 'access.granted', memberId: 'm_c3', email: 'c3@example.com', access: { level: 'gold' } }))
    expect(again.status).toBe('succeeded')
    expect(h.tagNames('c3@example.com')).toEqual(['Access: gold'])
    expect(h.kit.account(KEY).tags.map((t) => t.name).sort()).toEqual(['Access: gold', 'Access: platinum'])
  })

  it('drops the cached field list when creating a field finds it already in Kit, so a field deleted meanwhile is not written blindly', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const m = { memberId: 'm_fl', email: 'fl@example.com' }
    await h.settled(await h.send({ ...m, type: 'user.signed_up', fields: { mk_subscription_plan: 'free' } }))
    // In Kit, "Subscription plan" is deleted and "Access level" is made by hand.
    const fields = h.kit.account(KEY).customFields
    fields.splice(fields.findIndex((f) => f.key === 'subscription_plan'), 1)
    h.kit.seed(KEY, { customFields: ['Access level'] })

    const before = h.kit.requests.length
    expect((await h.settled(await h.send({ ...m, type: 'access.granted', access: { level: 'gold' } }))).status).toBe('succeeded')
    expect(h.callsSince(before).slice(0, 1)).toEqual(['POST /v4/custom_fields 200'])
    const next = h.kit.requests.length
    expect((await h.settled(await h.send({ ...m, type: 'user.updated', fields: { mk_subscription_plan: 'pro' } }))).status).toBe('succeeded')
    expect(h.callsSince(next)).toEqual(['GET /v4/custom_fields 200', 'POST /v4/custom_fields 201', 'PUT /v4/subscribers/:id 200'])
    expect(h.subscriber('fl@example.com')?.fields).toMatchObject({ subscription_plan: 'pro', access_level: 'gold' })
  })
})
