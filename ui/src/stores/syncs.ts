/**
 * Bringing existing members over: a chosen member file, its preview (a dry run on the server) with
 * the file's columns and the member field each fills, the sync it starts with that same mapping,
 * and that sync's progress, polled while it runs, with pause, resume and cancel.
 * A preview describes one Kit account as it was: disconnecting or connecting (again) forgets it.
 */
import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import type { Sync, SyncColumn, SyncPlan } from '#shared/api.ts'
import { api, type SyncContentType } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useConnectionStore } from './connection.ts'
import { useSessionStore } from './session.ts'

/** Progress is read this often while a sync runs: well inside the settings API's own rate limit. */
export const POLL_MS = 3000

/** The file's type, from its name (browsers give CSV files several types, JSON Lines often none). */
export function contentTypeOf(file: { name: string; type: string }): SyncContentType | null {
  const name = file.name.toLowerCase()
  if (name.endsWith('.csv') || file.type === 'text/csv') return 'text/csv'
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson') || file.type === 'application/x-ndjson') return 'application/x-ndjson'
  return null
}

/** The columns a refused file's answer lists (missing_column, invalid_column_mapping), if any. */
function columnsOf(error: ApiError): SyncColumn[] | null {
  const columns = error.details.columns
  if (!Array.isArray(columns)) return null
  return (columns as unknown[]).filter(isColumn)
}

function isColumn(value: unknown): value is SyncColumn {
  if (typeof value !== 'object' || value === null) return false
  const { name, field } = value as Record<string, unknown>
  return typeof name === 'string' && (field === null || typeof field === 'string')
}

/** The mapping as the server takes it: a JSON object of the columns that fill a field (the rest are ignored). */
export function mappingParameter(columns: SyncColumn[]): string {
  return JSON.stringify(Object.fromEntries(columns.filter((c) => c.field !== null).map((c) => [c.name, c.field])))
}

export const useSyncsStore = defineStore('syncs', () => {
  const session = useSessionStore()
  const connection = useConnectionStore()

  const file = ref<File | null>(null)
  const fileError = ref<string | null>(null)
  const plan = ref<SyncPlan | null>(null)
  const planning = ref(false)
  const planError = ref<ApiError | null>(null)
  /** The file's columns and the field each fills: from the last preview, then as the owner changes them. */
  const columns = ref<SyncColumn[] | null>(null)
  /** The owner changed the mapping since the last preview: preview again before starting. */
  const mappingChanged = ref(false)
  const current = ref<Sync | null>(null)
  const loadError = ref<ApiError | null>(null)
  const starting = ref(false)
  const startError = ref<ApiError | null>(null)
  const controlling = ref(false)
  const controlError = ref<ApiError | null>(null)
  let timer: ReturnType<typeof setTimeout> | null = null
  /** Bumped when the chosen file and its preview are forgotten, so a preview still on its way is dropped. */
  let generation = 0

  const active = computed(() => current.value?.status === 'running' || current.value?.status === 'paused')
  const processed = computed(() => (current.value ? current.value.done + current.value.failed + current.value.skipped : 0))

  function choose(chosen: File | null): void {
    plan.value = null
    planError.value = null
    startError.value = null
    fileError.value = null
    columns.value = null
    mappingChanged.value = false
    file.value = chosen
    if (chosen && contentTypeOf(chosen) === null) {
      fileError.value = 'Choose a .csv file (a header line, then one member a line) or a .jsonl file (one JSON object a line).'
    }
  }

  async function preview(): Promise<void> {
    const chosen = file.value
    const type = chosen ? contentTypeOf(chosen) : null
    if (!chosen || !type) return
    const asked = generation
    planning.value = true
    planError.value = null
    startError.value = null
    try {
      // The first preview takes the mapping the server remembers (or suggests); later ones the owner's.
      const answer = columns.value
        ? await api.previewSync(chosen, type, mappingParameter(columns.value))
        : await api.previewSync(chosen, type)
      if (asked !== generation) return
      plan.value = answer
      columns.value = answer.columns.map((c) => ({ ...c }))
      mappingChanged.value = false
    } catch (err) {
      if (asked !== generation) return
      const error = toApiError(err)
      planError.value = error
      plan.value = null
      columns.value = columnsOf(error) ?? columns.value
    } finally {
      if (asked === generation) planning.value = false
    }
  }

  /** Forgets the chosen file and its preview (the sync itself, if any, stays shown). */
  function forgetPreview(): void {
    generation++
    choose(null)
    planning.value = false
  }

  watch(
    () => `${connection.status}|${connection.connection?.updated_at ?? ''}`,
    () => forgetPreview(),
  )

  function schedule(): void {
    stopPolling()
    if (current.value?.status !== 'running') return
    timer = setTimeout(() => {
      void refresh()
    }, POLL_MS)
  }

  function stopPolling(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
  }

  async function refresh(): Promise<void> {
    if (!current.value) return
    try {
      current.value = await api.getSync(current.value.id)
      loadError.value = null
    } catch (err) {
      loadError.value = toApiError(err)
    }
    schedule()
  }

  /** The most recent sync, so a running one is shown again when the panel opens. */
  async function load(): Promise<void> {
    try {
      const list = await api.listSyncs()
      current.value = list.items[0] ?? null
      loadError.value = null
    } catch (err) {
      loadError.value = toApiError(err)
    }
    schedule()
  }

  async function start(): Promise<void> {
    const chosen = file.value
    const type = chosen ? contentTypeOf(chosen) : null
    if (!chosen || !type) return
    if (!columns.value || mappingChanged.value) return
    starting.value = true
    startError.value = null
    try {
      // The mapping the preview showed, so the sync judges the file as the preview did.
      current.value = await api.startSync(chosen, type, mappingParameter(columns.value))
      plan.value = null
      columns.value = null
      file.value = null
      session.toast(`Sync started: ${current.value.total} members on their way to Kit.`, 'success')
    } catch (err) {
      startError.value = toApiError(err)
    } finally {
      starting.value = false
    }
    schedule()
  }

  /** The owner maps a column to a member field (null: ignore it). */
  function mapColumn(name: string, field: string | null): void {
    if (!columns.value) return
    columns.value = columns.value.map((c) => (c.name === name ? { ...c, field } : c))
    mappingChanged.value = true
  }

  async function control(verb: 'pause' | 'resume' | 'cancel'): Promise<void> {
    if (!current.value) return
    controlling.value = true
    controlError.value = null
    try {
      current.value = await api.controlSync(current.value.id, verb)
    } catch (err) {
      controlError.value = toApiError(err)
    } finally {
      controlling.value = false
    }
    schedule()
  }

  return {
    file,
    fileError,
    plan,
    planning,
    planError,
    columns,
    mappingChanged,
    current,
    loadError,
    starting,
    startError,
    controlling,
    controlError,
    active,
    processed,
    choose,
    preview,
    mapColumn,
    forgetPreview,
    start,
    load,
    refresh,
    control,
    stopPolling,
  }
})
