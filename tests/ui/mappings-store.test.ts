import { createPinia, setActivePinia } from 'pinia'
import { nextTick } from 'vue'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { useCatalogueStore } from '../../ui/src/stores/catalogue.ts'
import { useMappingsStore } from '../../ui/src/stores/mappings.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { EVENT_TYPES } from '#shared/events.ts'
import { someMappings } from './factories.ts'

vi.mock('../../ui/src/api/index.ts')

describe('mappings store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.resetAllMocks()
    vi.mocked(api.getMappings).mockResolvedValue(someMappings())
    vi.mocked(api.saveMappings).mockImplementation(async (doc) => doc)
  })

  it('holds every event type once loaded and is not dirty', async () => {
    const store = useMappingsStore()
    await store.load()
    expect(Object.keys(store.draft!.events)).toEqual([...EVENT_TYPES])
    expect(store.draft!.events['user.updated']).toEqual({
      add_tags: [],
      remove_tags: [],
      add_to_forms: [],
      add_to_sequences: [],
      unsubscribe: false,
    })
    expect(store.dirty).toBe(false)
  })

  it('becomes dirty on an edit, tells the host, and is clean again after saving', async () => {
    const session = useSessionStore()
    const reportDirty = vi.spyOn(session, 'reportDirty')
    const store = useMappingsStore()
    await store.load()

    store.addTag('user.signed_up', 'add_tags', { id: 7, name: 'VIP' })
    expect(store.dirty).toBe(true)
    await nextTick()
    expect(reportDirty).toHaveBeenLastCalledWith(true)

    expect(await store.save()).toBe(true)
    expect(api.saveMappings).toHaveBeenCalledTimes(1)
    const sent = vi.mocked(api.saveMappings).mock.calls[0]![0]
    expect(sent.events['user.signed_up']!.add_tags).toEqual([{ name: 'New Member' }, { id: 7, name: 'VIP' }])
    expect(store.dirty).toBe(false)
    await nextTick()
    expect(reportDirty).toHaveBeenLastCalledWith(false)
  })

  it('is not dirty when an edit is undone', async () => {
    const store = useMappingsStore()
    await store.load()
    store.setUnsubscribe('user.deleted', true)
    store.setUnsubscribe('user.deleted', false)
    expect(store.dirty).toBe(false)
  })

  it('refuses to save a duplicate member field and sends nothing', async () => {
    const store = useMappingsStore()
    await store.load()
    store.addField()
    store.setFieldSource(2, 'mk_access_level')
    store.setFieldLabel(2, 'Level again')
    expect(store.errors['fields.2.source']).toBe('mk_access_level is already mapped above.')
    expect(await store.save()).toBe(false)
    expect(api.saveMappings).not.toHaveBeenCalled()
    expect(store.saveError).toMatch(/Nothing was saved/)
  })

  it('derives a new Kit field key from the label, or uses the existing field', async () => {
    const catalogue = useCatalogueStore()
    catalogue.customFields.items = [{ id: 1, key: 'country_code', label: 'Country' }]
    const store = useMappingsStore()
    await store.load()
    store.addField()
    store.setFieldSource(2, 'mk_country')
    store.setFieldLabel(2, 'country')
    expect(store.draft!.fields[2]!.kit_field).toEqual({ key: 'country_code', label: 'Country' })
    store.setFieldLabel(2, 'Member since (date)')
    expect(store.draft!.fields[2]!.kit_field).toEqual({ key: 'member_since_date', label: 'Member since (date)' })
  })

  it('puts a server 400 beside the part it names', async () => {
    vi.mocked(api.saveMappings).mockRejectedValue(
      new ApiError(400, 'invalid_mappings', 'events.user.signed_up.add_tags[0].name must not be blank'),
    )
    const store = useMappingsStore()
    await store.load()
    store.setUnsubscribe('user.deleted', true)
    expect(await store.save()).toBe(false)
    expect(store.errors['events.user.signed_up.add_tags']).toMatch(/must not be blank/)
    store.setUnsubscribe('user.deleted', false)
    expect(store.errors['events.user.signed_up.add_tags']).toBeUndefined()
  })

  it('keeps new tags and Kit fields in the draft by name, and calls only reads until saved', async () => {
    const store = useMappingsStore()
    await store.load()
    store.addTag('user.updated', 'add_tags', { name: 'Brand new' })
    store.addField()
    store.setFieldSource(2, 'mk_country')
    store.setFieldLabel(2, 'Country of residence')
    const writes = Object.entries(api).filter(([name, fn]) => name !== 'getMappings' && vi.isMockFunction(fn) && fn.mock.calls.length > 0)
    expect(writes).toEqual([])
    expect('createTag' in useCatalogueStore()).toBe(false)

    store.discard()
    expect(store.draft!.events['user.updated']!.add_tags).toEqual([])
    expect(store.draft!.fields).toHaveLength(2)

    store.addTag('user.updated', 'add_tags', { name: 'Brand new' })
    expect(store.newTagNames).toContain('Brand new')
    await store.save()
    expect(vi.mocked(api.saveMappings).mock.calls[0]![0].events['user.updated']!.add_tags).toEqual([{ name: 'Brand new' }])
  })

  it('applies a guard rail’s fix and asks again to confirm a newly ticked sign-up unsubscribe', async () => {
    const store = useMappingsStore()
    await store.load()
    store.setUnsubscribe('user.signed_up', true)
    const confirm = store.guards.find((g) => g.level === 'confirm')!
    expect(await store.save()).toBe(false)
    store.applyFix(confirm, confirm.fixes[0]!)
    expect(store.signupUnsubscribeConfirmed).toBe(true)
    const warning = store.guards.find((g) => g.level === 'warning')!
    store.applyFix(warning, warning.fixes[0]!)
    expect(store.draft!.events['user.signed_up']!.unsubscribe).toBe(false)
    store.setUnsubscribe('user.signed_up', true)
    expect(store.signupUnsubscribeConfirmed).toBe(false)
  })

  it('restores the defaults as an unsaved change', async () => {
    vi.mocked(api.getMappings).mockResolvedValue(someMappings((m) => (m.fields = [])))
    const store = useMappingsStore()
    await store.load()
    store.restoreDefaults()
    expect(store.dirty).toBe(true)
    expect(store.draft!.fields.map((f) => f.source)).toEqual(['mk_subscription_plan', 'mk_access_level'])
  })

  it('edits rules and their conditions in the draft, carrying a value across comparisons, and is clean again once undone', async () => {
    const store = useMappingsStore()
    await store.load()
    const at = { type: 'subscription.started' as const, rule: store.addRule('subscription.started') }
    const condition = () => store.draft!.events['subscription.started']!.rules![0]!.conditions[0]!
    expect(condition()).toEqual({ field: 'subscription.plan', op: 'is', value: '' })
    store.setConditionValue(at, 0, 'pro-annual')
    store.setConditionOp(at, 0, 'is_one_of')
    expect(condition()).toEqual({ field: 'subscription.plan', op: 'is_one_of', values: ['pro-annual'] })
    store.addConditionValue(at, 0)
    store.removeEmptyValues(at, 0)
    expect(condition().values).toEqual(['pro-annual'])
    store.setConditionOp(at, 0, 'is_empty')
    expect(condition()).toEqual({ field: 'subscription.plan', op: 'is_empty' })
    store.setConditionOp(at, 0, 'is')
    store.setConditionField(at, 0, 'member.consent.marketing')
    expect(condition()).toEqual({ field: 'member.consent.marketing', op: 'is', value: 'true' })

    store.addTag('subscription.started', 'add_tags', { name: 'Annual' }, at.rule)
    store.addRule('subscription.started')
    store.moveRule('subscription.started', 1, -1)
    expect(store.draft!.events['subscription.started']!.rules!.map((r) => r.add_tags.length)).toEqual([0, 1])
    store.addCondition('filter')
    expect(store.draft!.filter).toEqual([{ field: 'member.email_domain', op: 'is', value: '' }])
    expect(store.dirty).toBe(true)

    store.removeCondition('filter', 0)
    store.removeRule('subscription.started', 1)
    store.removeRule('subscription.started', 0)
    expect(store.dirty).toBe(false)
  })
})
