// Over 400 lines: tag ids held across restarts and instances, each case with its own database and stand-in.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { asA, KEY, KEY_B, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness
const dirs: string[] = []

afterEach(async () => {
  await h.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const tagCount = () => h.kit.account(KEY).tags.length
const stepsOf = (eventId: string) =>
  JSON.parse(h.delivery(eventId)!.steps) as { action: string; target: string | null; detail: string | null }[]

const mappingsDoc = async () => (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()

async function fileHarness(): Promise<PipelineHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'kit-tag-ids-'))
  dirs.push(dir)
  return PipelineHarness.start({ config: { databasePath: join(dir, 'kit.sqlite') } })
}

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
    // The mapping holds the new tag from now on.
    expect((await mappingsDoc()).events['user.signed_up'].add_tags).toEqual([{ id: h.tag('New Member').id, name: 'New Member' }])
  })

  it("treats a 422 that speaks of the tag like a 404: reads the list again and tags with Kit's current id", async () => {
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
    expect(h.callsSince(before)).toEqual([
      'POST /v4/tags/:id/subscribers/:id 422',
      'GET /v4/tags 200',
      'POST /v4/tags/:id/subscribers/:id 201',
    ])
    expect(h.tagNames('u1@example.com')).toEqual(['New Member'])
  })

  it("drops the cached list when creating a tag finds it already in Kit, so the next lookup sees Kit's changes", async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.settled(await h.send({ type: 'access.granted', memberId: 'm_c1', email: 'c1@example.com', access: { level: 'gold' } }))
    // Made by hand in Kit after the plugin read its tag list.
    h.kit.seed(KEY, { tags: ['Access: platinum', 'Access: silver'] })

    const platinum = await h.settled(
      await h.send({ type: 'access.granted', memberId: 'm_c2', email: 'c2@example.com', access: { level: 'platinum' } }),
    )
    expect(platinum.status).toBe('succeeded')
    expect(h.tagNames('c2@example.com')).toEqual(['Access: platinum'])
    const before = h.kit.requests.length
    const silver = await h.settled(
      await h.send({ type: 'access.granted', memberId: 'm_c3', email: 'c3@example.com', access: { level: 'silver' } }),
    )
    expect(silver.status).toBe('succeeded')
    // Found in the list read again, not created.
    expect(h.callsSince(before).filter((c) => /^\w+ \/v4\/tags \d+$/.test(c))).toEqual(['GET /v4/tags 200'])
    expect(h.tagNames('c3@example.com')).toEqual(['Access: silver'])
    expect(
      h.kit
        .account(KEY)
        .tags.map((t) => t.name)
        .sort(),
    ).toEqual(['Access: gold', 'Access: platinum', 'Access: silver'])
  })

  it('reads the field list again when Kit refuses to create a label it already has, uses that field, and writes no deleted field blindly', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const m = { memberId: 'm_fl', email: 'fl@example.com' }
    await h.settled(await h.send({ ...m, type: 'user.signed_up', fields: { mk_subscription_plan: 'free' } }))
    // In Kit, "Subscription plan" is deleted and "Access level" is made by hand.
    const fields = h.kit.account(KEY).customFields
    fields.splice(
      fields.findIndex((f) => f.key === 'subscription_plan'),
      1,
    )
    h.kit.seed(KEY, { customFields: ['Access level'] })

    const before = h.kit.requests.length
    const granted = await h.settled(await h.send({ ...m, type: 'access.granted', access: { level: 'gold' } }))
    expect(granted).toMatchObject({ status: 'succeeded', attempts: 1, last_error: null })
    expect(h.callsSince(before).slice(0, 2)).toEqual(['POST /v4/custom_fields 422', 'GET /v4/custom_fields 200'])
    const next = h.kit.requests.length
    expect((await h.settled(await h.send({ ...m, type: 'user.updated', fields: { mk_subscription_plan: 'pro' } }))).status).toBe(
      'succeeded',
    )
    expect(h.callsSince(next)).toEqual(['POST /v4/custom_fields 201', 'PUT /v4/subscribers/:id 200'])
    expect(h.subscriber('fl@example.com')?.fields).toMatchObject({ subscription_plan: 'pro', access_level: 'gold' })
    expect(
      h.kit
        .account(KEY)
        .customFields.map((f) => f.label)
        .sort(),
    ).toEqual(['Access level', 'Subscription plan'])
  })
})

describe('a tag mapped by name holds the tag Kit gave it', () => {
  it('keeps applying the tag a default mapping created after it is renamed in Kit and the app restarts, creating no second one', async () => {
    h = await fileHarness()
    await h.connect()
    const subscription = { id: 's_am', plan: 'pro', status: 'active' }
    const m = { memberId: 'm_am', email: 'am@example.com' }
    expect((await h.settled(await h.send({ ...m, type: 'subscription.started', subscription }))).status).toBe('succeeded')
    const active = h.tag('Active Member')
    const doc = await mappingsDoc()
    expect(doc.events['subscription.started'].add_tags).toEqual([{ id: active.id, name: 'Active Member' }])
    expect(doc.events['subscription.canceled'].remove_tags).toEqual([{ id: active.id, name: 'Active Member' }])

    h.kit.renameTag(KEY, active.id, 'Members')
    await h.restart()
    // Test connection names the tag as Kit does now.
    const test = (await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })).json()
    expect(test.checks.filter((c: { kind: string; id: number | null }) => c.kind === 'tag' && c.id === active.id)).toEqual([
      expect.objectContaining({ name: 'Members', status: 'ok', used_by: ['subscription.started', 'subscription.canceled'] }),
    ])

    const canceledId = await h.send({ ...m, type: 'subscription.canceled', subscription: { ...subscription, status: 'canceled' } })
    expect(await h.settled(canceledId)).toMatchObject({ status: 'succeeded', last_error: null })
    expect(stepsOf(canceledId).map((s) => s.action)).toEqual(['subscriber.unchanged', 'tag.removed', 'tag.added'])
    expect(h.tagNames('am@example.com')).toEqual(['Cancelled'])

    const tags = tagCount()
    expect((await h.settled(await h.send({ memberId: 'm_am2', email: 'am2@example.com', type: 'subscription.started' }))).status).toBe(
      'succeeded',
    )
    expect(h.tagNames('am2@example.com')).toEqual(['Members'])
    expect(tagCount()).toBe(tags)
    expect(
      h.kit
        .account(KEY)
        .tags.map((t) => t.name)
        .sort(),
    ).toEqual(['Cancelled', 'Members'])
  })

  it("holds the tag of a saved name-only mapping on every event that names it, and keeps the owner's other changes", async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.putMappings((doc) => {
      doc.events['user.signed_up'].add_tags = [{ name: 'VIP' }]
      doc.events['user.deleted'].remove_tags = [{ name: 'vip ' }]
      doc.events['access.granted'].add_tags = [{ name: 'Access: {{access.level}}' }, { name: 'Early' }]
    })
    await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_sv', email: 'sv@example.com' }))
    const vip = h.tag('VIP')
    const doc = await mappingsDoc()
    expect(doc.events['user.signed_up'].add_tags).toEqual([{ id: vip.id, name: 'VIP' }])
    expect(doc.events['user.deleted'].remove_tags).toEqual([{ id: vip.id, name: 'vip' }])
    // Not used yet, and templated names hold theirs per filled-in name, outside the document.
    expect(doc.events['access.granted'].add_tags).toEqual([{ name: 'Access: {{access.level}}' }, { name: 'Early' }])
  })

  it('holds the tag each filled-in templated name first got, across a restart, whatever Kit renames or makes anew', async () => {
    h = await fileHarness()
    await h.connect()
    const m = { memberId: 'm_lv', email: 'lv@example.com', access: { level: 'gold' } }
    expect((await h.settled(await h.send({ ...m, type: 'access.granted' }))).status).toBe('succeeded')
    const gold = h.tag('Access: gold')
    // In Kit the tag is renamed, and someone makes a new "Access: gold" by hand.
    h.kit.renameTag(KEY, gold.id, 'Gold members')
    h.kit.seed(KEY, { tags: ['Access: gold'] })
    await h.restart()

    const other = { memberId: 'm_lv2', email: 'lv2@example.com' }
    expect((await h.settled(await h.send({ ...other, type: 'access.granted', access: { level: 'gold' } }))).status).toBe('succeeded')
    expect(h.tagNames('lv2@example.com')).toEqual(['Gold members'])
    expect((await h.settled(await h.send({ ...m, type: 'access.revoked' }))).status).toBe('succeeded')
    expect(h.tagNames('lv@example.com')).toEqual([])
    // Another filled-in name is its own tag.
    expect((await h.settled(await h.send({ ...other, type: 'access.granted', access: { level: 'silver' } }))).status).toBe('succeeded')
    expect(h.tagNames('lv2@example.com')).toEqual(['Access: silver', 'Gold members'])
    expect(
      h.kit
        .account(KEY)
        .tags.map((t) => t.name)
        .sort(),
    ).toEqual(['Access: gold', 'Access: silver', 'Gold members'])
  })

  it('makes a templated tag again, and holds it, when the one it held was deleted in Kit', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.settled(await h.send({ type: 'access.granted', memberId: 'm_d1', email: 'd1@example.com', access: { level: 'gold' } }))
    const first = h.tag('Access: gold')
    h.kit.deleteTag(KEY, first.id)

    expect(
      (await h.settled(await h.send({ type: 'access.granted', memberId: 'm_d2', email: 'd2@example.com', access: { level: 'gold' } })))
        .status,
    ).toBe('succeeded')
    const again = h.tag('Access: gold')
    expect(again.id).not.toBe(first.id)
    expect(h.tagNames('d2@example.com')).toEqual(['Access: gold'])
    h.kit.renameTag(KEY, again.id, 'Gold')
    expect(
      (await h.settled(await h.send({ type: 'access.granted', memberId: 'm_d3', email: 'd3@example.com', access: { level: 'gold' } })))
        .status,
    ).toBe('succeeded')
    expect(h.tagNames('d3@example.com')).toEqual(['Gold'])
  })

  it('makes a tag mapped by name again, and holds it, when the tag it held was deleted in Kit, also after the mappings were saved as shown', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_h1', email: 'h1@example.com' }))
    const held = h.tag('New Member')
    h.kit.deleteTag(KEY, held.id)
    const test = (await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })).json()
    expect(test.checks.find((c: { name: string }) => c.name === 'New Member')).toMatchObject({ status: 'created_on_first_use', id: null })

    const d = await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_h2', email: 'h2@example.com' }))
    expect(d).toMatchObject({ status: 'succeeded', last_error: null })
    const again = h.tag('New Member')
    expect(again.id).not.toBe(held.id)
    expect(h.tagNames('h2@example.com')).toEqual(['New Member'])
    expect((await mappingsDoc()).events['user.signed_up'].add_tags).toEqual([{ id: again.id, name: 'New Member' }])
    // Saved from the panel as it was shown, it is still the plugin's own tag, not an owner's pick.
    await h.putMappings(() => {})
    h.kit.deleteTag(KEY, again.id)
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_h3', email: 'h3@example.com' }))).status).toBe('succeeded')
    expect(h.tagNames('h3@example.com')).toEqual(['New Member'])
  })

  it('makes the tags again in the Kit account a new key reaches, and holds those', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const subscription = { id: 's_sw', plan: 'pro', status: 'active' }
    await h.settled(await h.send({ type: 'subscription.started', memberId: 'm_sw', email: 'sw@example.com', subscription }))
    await h.settled(await h.send({ type: 'access.granted', memberId: 'm_sw', email: 'sw@example.com', access: { level: 'gold' } }))
    const first = h.tag('Active Member')

    await h.connect(asA, KEY_B)
    const m = { memberId: 'm_sw2', email: 'sw2@example.com' }
    expect(await h.settled(await h.send({ ...m, type: 'subscription.started' }))).toMatchObject({ status: 'succeeded', last_error: null })
    expect(await h.settled(await h.send({ ...m, type: 'access.granted', access: { level: 'gold' } }))).toMatchObject({
      status: 'succeeded',
      last_error: null,
    })
    expect(h.tagNames('sw2@example.com', KEY_B)).toEqual(['Access: gold', 'Active Member'])
    const active = h.tag('Active Member', KEY_B)
    expect(active.id).not.toBe(first.id)
    expect((await mappingsDoc()).events['subscription.canceled'].remove_tags).toEqual([{ id: active.id, name: 'Active Member' }])
  })
})

describe('Kit refusing to create what it already has', () => {
  it('uses a custom field whose creation Kit carried out although its answer never arrived', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const m = { memberId: 'm_lost', email: 'lost@example.com' }
    // Reads Kit's field list (and creates "Access level").
    await h.settled(await h.send({ ...m, type: 'user.signed_up', fields: { mk_access_level: 'gold' } }))
    const before = h.kit.requests.length
    h.kit.injectNext(1, 'lost-answer')
    const d = await h.settled(await h.send({ ...m, type: 'user.updated', fields: { mk_subscription_plan: 'pro' } }))
    expect(d).toMatchObject({ status: 'succeeded', attempts: 1, last_error: null })
    expect(h.callsSince(before)).toEqual([
      'POST /v4/custom_fields 201',
      'POST /v4/custom_fields 422',
      'GET /v4/custom_fields 200',
      'PUT /v4/subscribers/:id 200',
    ])
    expect(h.kit.account(KEY).customFields.map((f) => f.label)).toEqual(['Access level', 'Subscription plan'])
    expect(h.subscriber('lost@example.com')?.fields).toMatchObject({ subscription_plan: 'pro' })
  })

  it('fails naming the field when Kit refuses a creation and its list, read again, still lacks the field', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    const m = { memberId: 'm_ref', email: 'ref@example.com' }
    // Reads Kit's field list (and creates "Access level").
    await h.settled(await h.send({ ...m, type: 'user.signed_up', fields: { mk_access_level: 'gold' } }))
    const before = h.kit.requests.length
    h.kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: ['Label is too long'] }) })
    const d = await h.settled(await h.send({ ...m, type: 'user.updated', fields: { mk_subscription_plan: 'pro' } }))
    expect(d.status).toBe('failed')
    expect(d.last_error).toBe('Field "Subscription plan" not found or created in Kit: Kit refused it: Label is too long')
    expect(h.callsSince(before)).toEqual(['POST /v4/custom_fields 422', 'GET /v4/custom_fields 200'])
  })

  it('uses the tag another creation of the same name made first when Kit refuses to create it again', async () => {
    h = await PipelineHarness.start()
    await h.connect()
    await h.putMappings((doc) => {
      doc.events['user.updated'].add_tags = [{ name: 'VIP' }]
    })
    const m = { memberId: 'm_race', email: 'race@example.com', firstName: 'Ray' }
    await h.settled(await h.send({ ...m, type: 'user.signed_up' }))
    // Made by another instance after this one read the tag list; Kit refuses the second creation.
    h.kit.seed(KEY, { tags: ['VIP'] })
    h.kit.injectNext(1, { status: 422, body: JSON.stringify({ errors: ['Name has already been taken'] }) })
    const before = h.kit.requests.length
    const d = await h.settled(await h.send({ ...m, type: 'user.updated' }))
    expect(d).toMatchObject({ status: 'succeeded', attempts: 1, last_error: null })
    expect(h.callsSince(before)).toEqual(['POST /v4/tags 422', 'GET /v4/tags 200', 'POST /v4/tags/:id/subscribers/:id 201'])
    expect(h.tagNames('race@example.com')).toEqual(['New Member', 'VIP'])
    expect((await mappingsDoc()).events['user.updated'].add_tags).toEqual([{ id: h.tag('VIP').id, name: 'VIP' }])
  })
})
