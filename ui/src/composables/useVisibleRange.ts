/**
 * Which vertical slice of an element the person can see, in the element's own coordinates. It
 * works where `position: sticky` cannot: App Station sizes the panel's iframe to its content, so the
 * host page scrolls, not the panel. Thin sentinels every `step` px are watched by an
 * IntersectionObserver, whose implicit root is the top-level viewport, so the slice is known to
 * within `step` px; `bottom` errs on the visible side. null when unknown (no observer support, not
 * laid out yet) or when nothing of the element is in view.
 */
import { onBeforeUnmount, ref, watch, type Ref } from 'vue'

export interface VisibleRange {
  top: number
  bottom: number
}

/**
 * `layer` is an empty element (rendered without children) covering `target` from its top; the
 * sentinels are put in it.
 */
export function useVisibleRange(target: Ref<HTMLElement | null>, layerRef: Ref<HTMLElement | null>, step = 16): Ref<VisibleRange | null> {
  const range = ref<VisibleRange | null>(null)
  const visible = new Set<number>()
  let layer: HTMLElement | undefined
  let intersections: IntersectionObserver | undefined
  let resizes: ResizeObserver | undefined

  function update(): void {
    if (visible.size === 0) {
      range.value = null
      return
    }
    const indexes = [...visible]
    range.value = { top: Math.min(...indexes) * step, bottom: Math.max(...indexes) * step }
  }

  function build(): void {
    const el = target.value
    if (!el || !layer || !intersections) return
    const count = Math.ceil(el.offsetHeight / step) + 1
    while (layer.childElementCount > count) {
      const last = layer.lastElementChild as HTMLElement
      intersections.unobserve(last)
      visible.delete(Number(last.dataset.index))
      last.remove()
    }
    while (layer.childElementCount < count) {
      const index = layer.childElementCount
      const sentinel = document.createElement('div')
      sentinel.className = 'sentinel'
      sentinel.dataset.index = String(index)
      sentinel.style.top = `${index * step}px`
      layer.append(sentinel)
      intersections.observe(sentinel)
    }
    update()
  }

  function stop(): void {
    intersections?.disconnect()
    resizes?.disconnect()
    layer?.replaceChildren()
    intersections = undefined
    resizes = undefined
    layer = undefined
    visible.clear()
    range.value = null
  }

  function start(el: HTMLElement, into: HTMLElement): void {
    if (typeof IntersectionObserver === 'undefined' || typeof ResizeObserver === 'undefined') return
    layer = into
    intersections = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const index = Number((entry.target as HTMLElement).dataset.index)
        if (entry.isIntersecting) visible.add(index)
        else visible.delete(index)
      }
      update()
    })
    resizes = new ResizeObserver(build)
    resizes.observe(el)
    build()
  }

  // The element may appear later (e.g. once its data has loaded) and be replaced.
  watch(
    [target, layerRef],
    ([el, into]) => {
      stop()
      if (el && into) start(el, into)
    },
    { flush: 'post', immediate: true },
  )
  onBeforeUnmount(stop)

  return range
}
