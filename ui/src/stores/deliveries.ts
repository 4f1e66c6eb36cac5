/** The activity log: deliveries newest first, filtered by member and status, paged by cursor. */
import { defineStore } from 'pinia'
import { reactive, ref } from 'vue'
import type { Delivery, DeliveryStatus } from '../../../shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useSessionStore } from './session.ts'

export const PAGE_SIZE = 20

export interface DeliveryFilters {
  member: string
  status: DeliveryStatus | ''
}

export const useDeliveriesStore = defineStore('deliveries', () => {
  const session = useSessionStore()

  const items = ref<Delivery[]>([])
  const nextCursor = ref<string | null>(null)
  const filters = reactive<DeliveryFilters>({ member: '', status: '' })
  const loaded = ref(false)
  const loading = ref(false)
  const loadingMore = ref(false)
  const error = ref<ApiError | null>(null)
  const retrying = ref<string | null>(null)
  const retryError = ref<string | null>(null)
  const notice = ref('')

  const query = (cursor: string | null) => ({
    member: filters.member.trim(),
    status: filters.status,
    cursor,
    limit: PAGE_SIZE,
  })

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    try {
      const page = await api.listDeliveries(query(null))
      items.value = page.items
      nextCursor.value = page.next_cursor
      loaded.value = true
      notice.value = `${page.items.length === 0 ? 'No' : page.items.length} ${page.items.length === 1 ? 'delivery' : 'deliveries'} shown.`
    } catch (err) {
      error.value = toApiError(err)
    } finally {
      loading.value = false
    }
  }

  async function loadMore(): Promise<void> {
    if (!nextCursor.value) return
    loadingMore.value = true
    error.value = null
    try {
      const page = await api.listDeliveries(query(nextCursor.value))
      const known = new Set(items.value.map((d) => d.id))
      items.value.push(...page.items.filter((d) => !known.has(d.id)))
      nextCursor.value = page.next_cursor
      notice.value = `${page.items.length} more shown.`
    } catch (err) {
      error.value = toApiError(err)
    } finally {
      loadingMore.value = false
    }
  }

  async function retry(id: string): Promise<void> {
    retrying.value = id
    retryError.value = null
    try {
      await api.retryDelivery(id)
      session.toast('Delivery queued for another try.', 'success')
      await load()
      notice.value = 'Delivery queued for another try.'
    } catch (err) {
      const failure = toApiError(err)
      retryError.value = `Retry failed: ${failure.message}`
      session.toast(`Retry failed: ${failure.message}`, 'error')
    } finally {
      retrying.value = null
    }
  }

  return { items, nextCursor, filters, loaded, loading, loadingMore, error, retrying, retryError, notice, load, loadMore, retry }
})
