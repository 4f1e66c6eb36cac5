/**
 * The community's mappings document: what each member event does in Kit and which member fields
 * are copied to which Kit custom fields. The panel edits a draft and saves the whole document.
 * Nothing reaches Kit before Save: a new tag or custom field lives in the draft by name only, and
 * Kit creates it when an event first uses it, so "Discard changes" leaves the Kit account as it was.
 */
import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import type { KitRef, Mappings, TagRef } from '#shared/api.ts'
import { defaultMappings } from '#shared/defaults.ts'
import type { EventType } from '#shared/events.ts'
import { kitFieldKeyFromLabel } from '#shared/fields.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import {
  blockingGuards,
  completeMappings,
  guardRails,
  sameMappings,
  slotForServerMessage,
  validateMappings,
  type ErrorMap,
  type Guard,
  type GuardFix,
  type KitList,
  type TagList,
} from '../lib/mappings.ts'
import { useCatalogueStore } from './catalogue.ts'
import { useSessionStore } from './session.ts'

export const useMappingsStore = defineStore('mappings', () => {
  const session = useSessionStore()
  const catalogue = useCatalogueStore()

  const saved = ref<Mappings | null>(null)
  const draft = ref<Mappings | null>(null)
  /** Stable keys for the field rows, parallel to `draft.fields`. */
  const rowIds = ref<number[]>([])
  let nextRowId = 1

  const loading = ref(false)
  const loadError = ref<ApiError | null>(null)
  const saving = ref(false)
  const saveError = ref<string | null>(null)
  const serverErrors = ref<ErrorMap>({})
  /** Client-side problems are shown once the user tries to save, or as soon as a field row is touched. */
  const attempted = ref(false)
  /** The owner confirmed unsubscribing everyone who signs up (or the saved document already does). */
  const signupUnsubscribeConfirmed = ref(false)

  const dirty = computed(() => !!draft.value && !!saved.value && !sameMappings(draft.value, saved.value))
  const problems = computed<ErrorMap>(() => (draft.value ? validateMappings(draft.value) : {}))
  const errors = computed<ErrorMap>(() => ({ ...serverErrors.value, ...problems.value }))
  const guards = computed<Guard[]>(() =>
    draft.value
      ? guardRails(
          draft.value,
          {
            forms: catalogue.forms.loaded ? catalogue.forms.items : null,
            sequences: catalogue.sequences.loaded ? catalogue.sequences.items : null,
          },
          { signupUnsubscribeConfirmed: signupUnsubscribeConfirmed.value },
        )
      : [],
  )
  /** Tag names the draft uses that Kit does not have yet: offered in every tag picker, created on first use. */
  const newTagNames = computed<string[]>(() => {
    const known = new Set(catalogue.tags.items.map((t) => t.name.trim().toLowerCase()))
    const names = new Map<string, string>()
    for (const event of Object.values(draft.value?.events ?? {})) {
      for (const tag of [...(event?.add_tags ?? []), ...(event?.remove_tags ?? [])]) {
        const key = tag.name.trim().toLowerCase()
        if (tag.id === undefined && !known.has(key) && !/\{\{/.test(tag.name)) names.set(key, tag.name.trim())
      }
    }
    return [...names.values()]
  })

  watch(dirty, (value) => session.reportDirty(value))

  function adopt(doc: Mappings): void {
    saved.value = completeMappings(doc)
    draft.value = completeMappings(doc)
    rowIds.value = doc.fields.map(() => nextRowId++)
    serverErrors.value = {}
    saveError.value = null
    attempted.value = false
    signupUnsubscribeConfirmed.value = saved.value.events['user.signed_up']?.unsubscribe === true
  }

  async function load(): Promise<void> {
    loading.value = true
    loadError.value = null
    try {
      adopt(await api.getMappings())
    } catch (error) {
      loadError.value = toApiError(error)
    } finally {
      loading.value = false
    }
  }

  function edited(): void {
    serverErrors.value = {}
    saveError.value = null
  }

  function eventOf(type: EventType) {
    const event = draft.value?.events[type]
    if (!event) throw new Error(`No mapping loaded for ${type}`)
    return event
  }

  function addTag(type: EventType, list: TagList, tag: TagRef): void {
    const tags = eventOf(type)[list]
    const name = tag.name.trim()
    if (tags.some((t) => t.name.trim().toLowerCase() === name.toLowerCase())) return
    tags.push(tag.id === undefined ? { name } : { id: tag.id, name })
    edited()
  }

  function removeTag(type: EventType, list: TagList, index: number): void {
    eventOf(type)[list].splice(index, 1)
    edited()
  }

  function addKitRef(type: EventType, list: KitList, ref: KitRef): void {
    const refs = eventOf(type)[list]
    if (refs.some((r) => r.id === ref.id)) return
    refs.push({ id: ref.id, name: ref.name })
    edited()
  }

  function removeKitRef(type: EventType, list: KitList, index: number): void {
    eventOf(type)[list].splice(index, 1)
    edited()
  }

  function setUnsubscribe(type: EventType, value: boolean): void {
    eventOf(type).unsubscribe = value
    if (type === 'user.signed_up' && value && saved.value?.events[type]?.unsubscribe !== true) {
      signupUnsubscribeConfirmed.value = false
    }
    edited()
  }

  /** Erasure from Kit, on a deletion only: off leaves the option out of the document, as the server does. */
  function setErase(value: boolean): void {
    const event = eventOf('user.deleted')
    if (value) event.erase = true
    else delete event.erase
    edited()
  }

  /** Applies one of a guard rail's one-click fixes. */
  function applyFix(guard: Guard, fix: GuardFix): void {
    if (fix.kind === 'unsubscribe-off') setUnsubscribe(guard.type, false)
    else if (fix.kind === 'confirm-unsubscribe') signupUnsubscribeConfirmed.value = true
    else if (fix.list === 'add_tags' || fix.list === 'remove_tags') removeTag(guard.type, fix.list, fix.index)
    else removeKitRef(guard.type, fix.list, fix.index)
  }

  function addField(): void {
    if (!draft.value) return
    draft.value.fields.push({ source: '', kit_field: { key: '', label: '' } })
    rowIds.value.push(nextRowId++)
    edited()
  }

  function removeField(index: number): void {
    if (!draft.value) return
    draft.value.fields.splice(index, 1)
    rowIds.value.splice(index, 1)
    edited()
  }

  function setFieldSource(index: number, source: string): void {
    const field = draft.value?.fields[index]
    if (!field) return
    field.source = source.trim()
    edited()
  }

  /** Uses the Kit field with this label (or key) when one exists, else names a new one. */
  function setFieldLabel(index: number, label: string): void {
    const field = draft.value?.fields[index]
    if (!field) return
    const wanted = label.trim().toLowerCase()
    const existing = catalogue.customFields.items.find((f) => f.label.trim().toLowerCase() === wanted || f.key === label.trim())
    field.kit_field = existing ? { key: existing.key, label: existing.label } : { key: kitFieldKeyFromLabel(label), label }
    edited()
  }

  function restoreDefaults(): void {
    const defaults = completeMappings(defaultMappings())
    draft.value = defaults
    rowIds.value = defaults.fields.map(() => nextRowId++)
    edited()
  }

  function discard(): void {
    if (saved.value) adopt(saved.value)
  }

  /** Saves the whole document; false when something must be fixed first. */
  async function save(): Promise<boolean> {
    if (!draft.value) return false
    attempted.value = true
    saveError.value = null
    if (Object.keys(problems.value).length > 0 || blockingGuards(guards.value).length > 0) {
      saveError.value = 'Nothing was saved: fix the problems marked below first.'
      return false
    }
    saving.value = true
    try {
      adopt(await api.saveMappings(draft.value))
      session.toast('Mappings saved.', 'success')
      return true
    } catch (error) {
      const failure = toApiError(error)
      const slot = failure.status === 400 ? slotForServerMessage(failure.message) : null
      if (slot) serverErrors.value = { [slot]: failure.message }
      saveError.value = `Nothing was saved: ${failure.message}`
      session.toast('The mappings could not be saved.', 'error')
      return false
    } finally {
      saving.value = false
    }
  }

  return {
    saved,
    draft,
    rowIds,
    loading,
    loadError,
    saving,
    saveError,
    attempted,
    dirty,
    problems,
    errors,
    guards,
    newTagNames,
    signupUnsubscribeConfirmed,
    load,
    addTag,
    removeTag,
    addKitRef,
    removeKitRef,
    setUnsubscribe,
    setErase,
    applyFix,
    addField,
    removeField,
    setFieldSource,
    setFieldLabel,
    restoreDefaults,
    discard,
    save,
  }
})
