/**
 * "Delete by hand in Kit": the members an erasing deletion erased from Kit as far as its API
 * allows, each with the link to their page in Kit's app, and Done once the owner deleted them there.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { Erasure } from '#shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'

export const useErasuresStore = defineStore('erasures', () => {
  const items = ref<Erasure[]>([])
  const loaded = ref(false)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  /** The member being marked done. */
  const marking = ref<string | null>(null)
  const markError = ref<ApiError | null>(null)

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    try {
      items.value = (await api.listErasures()).items
      loaded.value = true
    } catch (err) {
      error.value = toApiError(err)
    } finally {
      loading.value = false
    }
  }

  async function done(memberId: string): Promise<void> {
    if (marking.value) return
    marking.value = memberId
    markError.value = null
    try {
      await api.markErasureDone(memberId)
      items.value = items.value.filter((e) => e.member_id !== memberId)
    } catch (err) {
      markError.value = toApiError(err)
    } finally {
      marking.value = null
    }
  }

  return { items, loaded, loading, error, marking, markError, load, done }
})
