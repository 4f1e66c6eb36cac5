/**
 * The preview of the mappings draft: what it would change, compared with what is saved, over the
 * community's recent events and the members of an import. The server counts it with the same
 * planning code that sends events to Kit, and asks Kit nothing. Only the newest request's answer
 * is kept, so a slow answer never replaces a newer one.
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Mappings, MappingPreview } from '#shared/api.ts'
import type { EventType } from '#shared/events.ts'
import { previewSentence } from '#shared/preview-words.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useMappingsStore } from './mappings.ts'

export const useMappingPreviewStore = defineStore('mappingPreview', () => {
  const mappings = useMappingsStore()

  const result = ref<MappingPreview | null>(null)
  /** The draft the result is for: its rules are named in the sentences. */
  const previewed = ref<Mappings | null>(null)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  let asked = 0

  /** A loaded draft without the problems the editor marks (the server would refuse it). */
  const ready = computed(() => mappings.draft !== null && Object.keys(mappings.problems).length === 0)

  /** One sentence per event type with recent events. */
  const sentences = computed<{ type: EventType; text: string }[]>(() =>
    (result.value?.events ?? []).map((counts) => ({
      type: counts.type,
      text: previewSentence(counts, previewed.value?.events[counts.type]?.rules),
    })),
  )

  async function refresh(): Promise<void> {
    if (!mappings.draft || !ready.value) return
    const ask = ++asked
    // A copy: the draft keeps changing while the answer is on its way.
    const draft = JSON.parse(JSON.stringify(mappings.draft)) as Mappings
    loading.value = true
    error.value = null
    try {
      const answer = await api.previewMappings(draft)
      if (ask !== asked) return
      result.value = answer
      previewed.value = draft
    } catch (err) {
      if (ask === asked) error.value = toApiError(err)
    } finally {
      if (ask === asked) loading.value = false
    }
  }

  return { result, loading, error, ready, sentences, refresh }
})
