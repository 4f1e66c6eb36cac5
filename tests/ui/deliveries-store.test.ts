import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { useCatalogueStore } from '../../ui/src/stores/catalogue.ts'
import { PAGE_SIZE, useDeliveriesStore } from '../../ui/src/stores/deliveries.ts'
import { aDelivery } from './factories.ts'

vi.mock('../../ui/src/api/index.ts')

describe('deliveries store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.resetAllMocks()
  })

  it('loads the first page with the filters, one member’s deliveries oldest first', async () => {
    vi.mocked(api.listDeliveries).mockResolvedValue({ items: [aDelivery()], next_cursor: 'c2' })
    const store = useDeliveriesStore()
    store.filters.member = ' ada@example.com '
    store.filters.status = 'failed'
    await store.load()
    expect(api.listDeliveries).toHaveBeenCalledWith({
      member: 'ada@example.com',
      status: 'failed',
      order: 'oldest',
      cursor: null,
      limit: PAGE_SIZE,
    })
    expect(store.items).toHaveLength(1)
    expect(store.nextCursor).toBe('c2')
  })

  it('appends the next page', async () => {
    const first = aDelivery()
    const second = aDelivery()
    vi.mocked(api.listDeliveries)
      .mockResolvedValueOnce({ items: [first], next_cursor: 'c2' })
      .mockResolvedValueOnce({ items: [second], next_cursor: null })
    const store = useDeliveriesStore()
    await store.load()
    await store.loadMore()
    expect(vi.mocked(api.listDeliveries).mock.calls[1]![0]).toMatchObject({ cursor: 'c2' })
    expect(store.items.map((d) => d.id)).toEqual([first.id, second.id])
    expect(store.nextCursor).toBeNull()
  })

  it('retries a delivery and updates that row in place, without reloading the list', async () => {
    const before = aDelivery()
    const failed = aDelivery({ status: 'failed', last_error: 'Kit answered 500' })
    const after = aDelivery()
    vi.mocked(api.listDeliveries).mockResolvedValueOnce({ items: [before, failed, after], next_cursor: null })
    vi.mocked(api.retryDelivery).mockResolvedValue({ ...failed, status: 'pending', last_error: null })
    const store = useDeliveriesStore()
    await store.load()
    await store.retry(failed.id)
    expect(api.retryDelivery).toHaveBeenCalledWith(failed.id)
    expect(api.listDeliveries).toHaveBeenCalledTimes(1)
    expect(store.items.map((d) => [d.id, d.status])).toEqual([
      [before.id, 'succeeded'],
      [failed.id, 'pending'],
      [after.id, 'succeeded'],
    ])
  })

  it('refreshes what is shown with the filters last applied, not the ones being typed', async () => {
    const first = aDelivery({ status: 'pending' })
    vi.mocked(api.listDeliveries)
      .mockResolvedValueOnce({ items: [first], next_cursor: null })
      .mockResolvedValueOnce({ items: [aDelivery(), { ...first, status: 'succeeded' }], next_cursor: null })
    const store = useDeliveriesStore()
    await store.load()
    expect(store.inFlight).toBe(true)
    store.filters.member = 'half-typ'
    expect(await store.refresh()).toBe(true)
    expect(vi.mocked(api.listDeliveries).mock.lastCall![0]).toEqual({ member: '', status: '', cursor: null, limit: PAGE_SIZE })
    expect(store.items).toHaveLength(2)
    expect(store.inFlight).toBe(false)
    expect(store.notice).toBe('1 new delivery.')
  })

  it('keeps a 404 as an error', async () => {
    vi.mocked(api.listDeliveries).mockRejectedValue(new ApiError(404, 'not_found', 'Nothing at GET /api/v1/deliveries'))
    const store = useDeliveriesStore()
    await store.load()
    expect(store.error?.status).toBe(404)
    expect(store.loaded).toBe(false)
  })
})

describe('catalogue store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.resetAllMocks()
  })

  it('loads each list once unless forced', async () => {
    vi.mocked(api.listTags).mockResolvedValue([{ id: 1, name: 'VIP' }])
    vi.mocked(api.listCustomFields).mockResolvedValue([])
    vi.mocked(api.listForms).mockResolvedValue([])
    vi.mocked(api.listSequences).mockRejectedValue(new ApiError(409, 'not_connected', 'Connect a Kit account first.'))
    const store = useCatalogueStore()
    await store.loadAll()
    await store.loadAll()
    expect(api.listTags).toHaveBeenCalledTimes(1)
    expect(store.tags.items).toEqual([{ id: 1, name: 'VIP' }])
    expect(store.sequences.error?.code).toBe('not_connected')
    await store.loadAll(true)
    expect(api.listTags).toHaveBeenCalledTimes(2)
  })
})
