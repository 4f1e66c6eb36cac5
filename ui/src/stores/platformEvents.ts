/**
 * What Kit told App Station (contract §7): whether events to the platform are configured, the last
 * 30 days counted by type and state, the failed ones, and Retry of one.
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { PlatformEvent, PlatformEventSummary } from '#shared/platform-events.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'

/** The failed events shown at once (the newest); the section says when there are more. */
export const FAILED_LIMIT = 50

export interface TypeCounts {
  type: string
  sent: number
  pending: number
  failed: number
}

export const usePlatformEventsStore = defineStore('platformEvents', () => {
  const summary = ref<PlatformEventSummary | null>(null)
  const failed = ref<PlatformEvent[]>([])
  /** More failed events exist than are shown. */
  const moreFailed = ref(false)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  const retrying = ref<string | null>(null)
  const retryError = ref<ApiError | null>(null)
  /** The ids sent again since the list was read: they wait for their next attempt. */
  const retried = ref<string[]>([])

  const configured = computed(() => summary.value?.configured === true)
  /** One row per event type, its counts by state, the busiest type first. */
  const byType = computed<TypeCounts[]>(() => {
    const rows = new Map<string, TypeCounts>()
    for (const { type, state, count } of summary.value?.counts ?? []) {
      const row = rows.get(type) ?? { type, sent: 0, pending: 0, failed: 0 }
      row[state] += count
      rows.set(type, row)
    }
    const total = (r: TypeCounts) => r.sent + r.pending + r.failed
    return [...rows.values()].sort((a, b) => total(b) - total(a) || a.type.localeCompare(b.type))
  })

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    try {
      const read = await api.getPlatformEventSummary()
      const page = read.configured
        ? await api.listPlatformEvents({ status: 'failed', limit: FAILED_LIMIT })
        : { items: [], next_cursor: null }
      summary.value = read
      failed.value = page.items
      moreFailed.value = page.next_cursor !== null
      retried.value = []
    } catch (err) {
      error.value = toApiError(err)
    } finally {
      loading.value = false
    }
  }

  async function retry(id: string): Promise<void> {
    if (retrying.value) return
    retrying.value = id
    retryError.value = null
    try {
      await api.retryPlatformEvent(id)
      failed.value = failed.value.filter((e) => e.id !== id)
      retried.value = [...retried.value, id]
    } catch (err) {
      retryError.value = toApiError(err)
    } finally {
      retrying.value = null
    }
  }

  return { summary, failed, moreFailed, loading, error, retrying, retryError, retried, configured, byType, load, retry }
})
