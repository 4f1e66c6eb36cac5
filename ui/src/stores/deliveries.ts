/**
 * The activity log: deliveries newest first (one member's oldest first), filtered by member and
 * status, paged by cursor, refreshed in place while the panel watches it, and Retry. A search that
 * names one member's whole email also says what Kit holds of them.
 */
import { defineStore } from 'pinia'
import { computed, reactive, ref } from 'vue'
import type { Delivery, DeliveryOrder, DeliveryStatus, MemberKit } from '#shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useSessionStore } from './session.ts'

export const PAGE_SIZE = 20
/** The API's largest page: a refresh re-reads everything shown, up to this. */
const MAX_PAGE = 200

export interface DeliveryFilters {
  member: string
  status: DeliveryStatus | ''
}

const UNFINISHED: readonly DeliveryStatus[] = ['pending', 'retrying']

export const useDeliveriesStore = defineStore('deliveries', () => {
  const session = useSessionStore()

  const items = ref<Delivery[]>([])
  const nextCursor = ref<string | null>(null)
  /** What Kit holds of the member the search names (null: the search names no one member). */
  const memberKit = ref<MemberKit | null>(null)
  /** What the owner is typing; `applied` is what the list shows, so a refresh never applies half-typed filters. */
  const filters = reactive<DeliveryFilters>({ member: '', status: '' })
  const applied = reactive<DeliveryFilters>({ member: '', status: '' })
  const loaded = ref(false)
  const loading = ref(false)
  const loadingMore = ref(false)
  const refreshing = ref(false)
  const error = ref<ApiError | null>(null)
  const retrying = ref<string | null>(null)
  const retryError = ref<string | null>(null)
  const notice = ref('')
  /** When the list last changed (a new delivery or a new status), for the refresh schedule. */
  const changedAt = ref(0)

  /** One member's story reads in the order it happened. */
  const order = computed<DeliveryOrder>(() => (applied.member !== '' ? 'oldest' : 'newest'))
  const unfinished = computed(() => items.value.filter((d) => UNFINISHED.includes(d.status)))
  /** Whether something shown is still on its way (pending now, not waiting for a later retry). */
  const inFlight = computed(() => unfinished.value.some((d) => d.status === 'pending'))
  /** The earliest time a retrying delivery shown is due again (epoch ms), or null. */
  const nextDueAt = computed(() => {
    const due = unfinished.value.flatMap((d) => (d.next_attempt_at ? [Date.parse(d.next_attempt_at)] : []))
    return due.length ? Math.min(...due) : null
  })

  const query = (cursor: string | null, limit = PAGE_SIZE) => ({
    member: applied.member,
    status: applied.status,
    ...(order.value === 'oldest' ? { order: order.value } : {}),
    cursor,
    limit,
  })

  const fingerprint = (list: Delivery[]) => list.map((d) => `${d.id}:${d.status}:${d.updated_at}`).join('|')

  async function load(): Promise<void> {
    applied.member = filters.member.trim()
    applied.status = filters.status
    loading.value = true
    error.value = null
    try {
      const page = await api.listDeliveries(query(null))
      items.value = page.items
      nextCursor.value = page.next_cursor
      memberKit.value = page.member_kit ?? null
      loaded.value = true
      changedAt.value = Date.now()
      notice.value = `${page.items.length === 0 ? 'No' : page.items.length} ${page.items.length === 1 ? 'delivery' : 'deliveries'} shown.`
    } catch (err) {
      error.value = toApiError(err)
    } finally {
      loading.value = false
    }
  }

  /**
   * Re-reads what is shown (new deliveries and changed statuses) without a loading state;
   * returns whether anything changed. Errors are kept quiet unless nothing could ever load.
   */
  async function refresh(): Promise<boolean> {
    if (!loaded.value || loading.value || loadingMore.value || refreshing.value) return false
    refreshing.value = true
    try {
      const limit = Math.min(MAX_PAGE, Math.max(PAGE_SIZE, items.value.length))
      const page = await api.listDeliveries(query(null, limit))
      const known = new Set(items.value.map((d) => d.id))
      const fresh = page.items.filter((d) => !known.has(d.id)).length
      const changed = fingerprint(page.items) !== fingerprint(items.value)
      items.value = page.items
      nextCursor.value = page.next_cursor
      memberKit.value = page.member_kit ?? null
      error.value = null
      if (changed) changedAt.value = Date.now()
      if (fresh > 0) notice.value = `${fresh} new ${fresh === 1 ? 'delivery' : 'deliveries'}.`
      return changed
    } catch (err) {
      error.value = toApiError(err)
      return false
    } finally {
      refreshing.value = false
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
      if (page.member_kit) memberKit.value = page.member_kit
      notice.value = `${page.items.length} more shown.`
    } catch (err) {
      error.value = toApiError(err)
    } finally {
      loadingMore.value = false
    }
  }

  /** Queues a failed delivery again and shows it as the server now has it, in the same place. */
  async function retry(id: string): Promise<void> {
    retrying.value = id
    retryError.value = null
    try {
      const updated = await api.retryDelivery(id)
      const index = items.value.findIndex((d) => d.id === id)
      if (index >= 0 && updated) items.value.splice(index, 1, updated)
      changedAt.value = Date.now()
      session.toast('Delivery queued for another try.', 'success')
      notice.value = 'Delivery queued for another try.'
    } catch (err) {
      const failure = toApiError(err)
      retryError.value = `Retry failed: ${failure.message}`
      session.toast(`Retry failed: ${failure.message}`, 'error')
    } finally {
      retrying.value = null
    }
  }

  return {
    items,
    nextCursor,
    memberKit,
    filters,
    applied,
    order,
    loaded,
    loading,
    loadingMore,
    refreshing,
    error,
    retrying,
    retryError,
    notice,
    changedAt,
    inFlight,
    nextDueAt,
    load,
    refresh,
    loadMore,
    retry,
  }
})
