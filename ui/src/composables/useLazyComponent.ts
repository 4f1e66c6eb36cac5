/**
 * A component fetched on demand (a chunk apart from the first screen's) when first needed: the component once it came, whether the
 * fetch failed (a new version deployed meanwhile, a dropped connection), and `load` to call again
 * for Try again. Not defineAsyncComponent: its code would weigh on the first screen, and this is
 * all the panel needs of it.
 */
import { ref, shallowRef, type Component, type Ref, type ShallowRef } from 'vue'

export interface LazyComponent {
  component: ShallowRef<Component | null>
  failed: Ref<boolean>
  load(): Promise<void>
}

export function useLazyComponent(fetch: () => Promise<{ default: Component }>): LazyComponent {
  const component = shallowRef<Component | null>(null)
  const failed = ref(false)
  let pending: Promise<void> | null = null

  function arrived(module: { default: Component }): void {
    component.value = module.default
  }

  function load(): Promise<void> {
    if (component.value !== null) return Promise.resolve()
    failed.value = false
    pending ??= fetch()
      .then(arrived, () => void (failed.value = true))
      .finally(() => (pending = null))
    return pending
  }

  return { component, failed, load }
}
