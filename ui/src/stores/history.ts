/**
 * The mappings' history: every save with who made it, when and the change in words (newest first,
 * a page at a time), and restoring an earlier version. A restore is previewed first: what it would
 * change, compared with the document in force, in the same words the server stores; then it is
 * saved as a new version and the mappings are loaded again.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { MappingVersion } from '#shared/api.ts'
import { mappingChanges } from '#shared/mapping-changes.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useMappingsStore } from './mappings.ts'
import { useSessionStore } from './session.ts'

/** Versions fetched per page. */
export const HISTORY_PAGE = 20

/** What restoring a version would change, from the document in force, one phrase each (none: no change). */
export interface RestorePreview {
  version: number
  changes: string[]
}

export const useHistoryStore = defineStore('history', () => {
  const session = useSessionStore()
  const mappings = useMappingsStore()

  const items = ref<MappingVersion[]>([])
  const nextCursor = ref<string | null>(null)
  const loaded = ref(false)
  const loading = ref(false)
  const loadError = ref<ApiError | null>(null)

  /** The version whose restore is being confirmed, and what it would change once known. */
  const asking = ref<number | null>(null)
  const preview = ref<RestorePreview | null>(null)
  const previewError = ref<ApiError | null>(null)
  const restoring = ref(false)
  const restoreError = ref<ApiError | null>(null)
  /** Said once a restore is saved (for the live region). */
  const result = ref('')

  async function fetchPage(cursor: string | null): Promise<void> {
    loading.value = true
    loadError.value = null
    try {
      const page = await api.listMappingVersions({ cursor, limit: HISTORY_PAGE })
      items.value = cursor ? [...items.value, ...page.items] : page.items
      nextCursor.value = page.next_cursor
      loaded.value = true
    } catch (error) {
      loadError.value = toApiError(error)
    } finally {
      loading.value = false
    }
  }

  /** The newest page, again. */
  const load = () => fetchPage(null)

  /** The next, older page. */
  async function loadMore(): Promise<void> {
    if (nextCursor.value && !loading.value) await fetchPage(nextCursor.value)
  }

  /** Asks to restore a version: fetches it and the document in force, and says what would change. */
  async function ask(version: number): Promise<void> {
    asking.value = version
    preview.value = null
    previewError.value = null
    restoreError.value = null
    result.value = ''
    try {
      const [wanted, inForce] = await Promise.all([api.getMappingVersion(version), api.getMappings()])
      if (asking.value === version) preview.value = { version, changes: mappingChanges(inForce, wanted) }
    } catch (error) {
      if (asking.value === version) previewError.value = toApiError(error)
    }
  }

  function cancel(): void {
    asking.value = null
    preview.value = null
    previewError.value = null
    restoreError.value = null
  }

  /** Restores the version being asked about; true once it is saved and everything is loaded again. */
  async function restore(): Promise<boolean> {
    const version = asking.value
    if (version === null || restoring.value) return false
    restoring.value = true
    restoreError.value = null
    try {
      await api.restoreMappingVersion(version)
      cancel()
      await Promise.all([mappings.load(), load()])
      const saved = items.value[0]
      result.value = saved ? `Version ${version} restored as version ${saved.version}.` : `Version ${version} restored.`
      session.toast(`Version ${version} of the mappings restored.`, 'success')
      return true
    } catch (error) {
      restoreError.value = toApiError(error)
      return false
    } finally {
      restoring.value = false
    }
  }

  return {
    items,
    nextCursor,
    loaded,
    loading,
    loadError,
    asking,
    preview,
    previewError,
    restoring,
    restoreError,
    result,
    load,
    loadMore,
    ask,
    cancel,
    restore,
  }
})
