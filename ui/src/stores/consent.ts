/**
 * The community's consent setting: who becomes a Kit subscriber. A choice is saved as soon as it
 * is made; choices made while one is saving are sent after it, the last one winning.
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { ConsentMode, ConsentSetting } from '#shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'

/** Saves in a row for choices made while saving; more would mean the server answers another mode. */
const MAX_SAVES = 5

export const useConsentStore = defineStore('consent', () => {
  const setting = ref<ConsentSetting | null>(null)
  const loading = ref(false)
  const loadError = ref<ApiError | null>(null)
  /** The mode chosen and not yet saved (null: none). */
  const wanted = ref<ConsentMode | null>(null)
  const saving = ref(false)
  const saved = ref(false)
  const saveError = ref<ApiError | null>(null)

  /** What the choice shows: the mode being saved, else the saved one. */
  const selected = computed<ConsentMode | null>(() => wanted.value ?? setting.value?.mode ?? null)

  async function load(): Promise<void> {
    loading.value = true
    try {
      setting.value = (await api.getConsent()) ?? null
      loadError.value = null
    } catch (err) {
      loadError.value = toApiError(err)
    } finally {
      loading.value = false
    }
  }

  async function choose(mode: ConsentMode): Promise<void> {
    wanted.value = mode
    saved.value = false
    saveError.value = null
    if (saving.value) return
    saving.value = true
    try {
      for (let i = 0; i < MAX_SAVES && wanted.value !== null && wanted.value !== setting.value?.mode; i++) {
        setting.value = await api.setConsent(wanted.value)
      }
      saved.value = true
    } catch (err) {
      saveError.value = toApiError(err)
    } finally {
      wanted.value = null
      saving.value = false
    }
  }

  return { setting, loading, loadError, saving, saved, saveError, selected, load, choose }
})
