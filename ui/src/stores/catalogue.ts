/**
 * What the connected Kit account offers to pick from: tags, custom fields, forms, sequences. Read
 * only: the panel never creates anything in Kit (new tags and fields are created on first use).
 */
import { defineStore } from 'pinia'
import { computed, reactive, type UnwrapRef } from 'vue'
import type { KitCustomField, KitForm, KitSequence, KitTag } from '#shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useConnectionStore } from './connection.ts'

export interface CatalogueList<T> {
  items: T[]
  loaded: boolean
  loading: boolean
  error: ApiError | null
}

const list = <T>(): CatalogueList<T> => ({ items: [], loaded: false, loading: false, error: null })

export const useCatalogueStore = defineStore('catalogue', () => {
  const connection = useConnectionStore()
  const tags = reactive(list<KitTag>())
  const customFields = reactive(list<KitCustomField>())
  const forms = reactive(list<KitForm>())
  const sequences = reactive(list<KitSequence>())

  async function fill<T>(target: UnwrapRef<CatalogueList<T>>, fetch: () => Promise<T[]>, force: boolean) {
    if (target.loading || (target.loaded && !force)) return
    target.loading = true
    target.error = null
    try {
      target.items = (await fetch()) as UnwrapRef<T[]>
      target.loaded = true
      connection.noteKitAnswered()
    } catch (error) {
      // Kit down or busy is said once, by the connection; other failures stay with their list.
      const failure = toApiError(error)
      if (!connection.noteKitFailure(failure)) target.error = failure
    } finally {
      target.loading = false
    }
  }

  /** Loads every list once; `force` reloads them (e.g. after connecting another account). */
  function loadAll(force = false): Promise<unknown> {
    return Promise.all([
      fill(tags, api.listTags, force),
      fill(customFields, api.listCustomFields, force),
      fill(forms, api.listForms, force),
      fill(sequences, api.listSequences, force),
    ])
  }

  /** Re-reads Kit's tags (e.g. once an event has created one the draft names). */
  function reloadTags(): Promise<void> {
    return fill(tags, api.listTags, true)
  }

  /** Why new tags cannot be created right now, or null. */
  const createBlocked = computed(() =>
    connection.kitTrouble
      ? connection.kitTrouble.kind === 'unreachable'
        ? 'New tags can’t be created while Kit can’t be reached.'
        : 'New tags can’t be created while Kit is busy.'
      : null,
  )

  function reset(): void {
    for (const target of [tags, customFields, forms, sequences]) Object.assign(target, list())
  }

  return { tags, customFields, forms, sequences, createBlocked, loadAll, reloadTags, reset }
})
