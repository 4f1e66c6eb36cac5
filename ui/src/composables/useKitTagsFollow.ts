/**
 * Keeps the tag pickers' "new" marks true: a tag the draft names but Kit did not have is created
 * in Kit by the first event that uses it. When Activity shows a delivery that added or removed
 * such a tag, Kit's tag list is read again, so the mark goes once Kit has the tag. The server keeps
 * Kit's lists for a short while, so a read that still misses the tag is tried once more after that.
 */
import { onBeforeUnmount, watch } from 'vue'
import { normalName } from '../lib/matching.ts'
import { useCatalogueStore } from '../stores/catalogue.ts'
import { useDeliveriesStore } from '../stores/deliveries.ts'
import { useMappingsStore } from '../stores/mappings.ts'

/** Past the server's cache of Kit's lists (30 s). */
export const TAGS_REREAD_MS = 31_000

export function useKitTagsFollow(rereadMs = TAGS_REREAD_MS): void {
  const catalogue = useCatalogueStore()
  const deliveries = useDeliveriesStore()
  const mappings = useMappingsStore()
  let timer: ReturnType<typeof setTimeout> | null = null

  /** The draft's new tag names that a shown delivery says Kit now has, as one comparable key. */
  const usedInKit = () => {
    const waiting = new Set(mappings.newTagNames.map(normalName))
    const seen = new Set<string>()
    for (const delivery of deliveries.items) {
      for (const step of delivery.steps) {
        if ((step.action === 'tag.added' || step.action === 'tag.removed') && step.target && waiting.has(normalName(step.target))) {
          seen.add(normalName(step.target))
        }
      }
    }
    return [...seen].sort().join('\n')
  }

  function clear(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
  }

  // Immediately too: Activity is another section now, so what it showed may be there before the editor.
  watch(
    usedInKit,
    async (names) => {
      clear()
      if (names === '') return
      await catalogue.reloadTags()
      if (usedInKit() === names) timer = setTimeout(() => void catalogue.reloadTags(), rereadMs)
    },
    { immediate: true },
  )

  onBeforeUnmount(clear)
}
