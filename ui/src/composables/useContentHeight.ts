/** Tells the host the panel's content height whenever it changes, so the iframe fits it. */
import { onBeforeUnmount, onMounted, type Ref } from 'vue'
import { useSessionStore } from '../stores/session.ts'

export function useContentHeight(target: Ref<HTMLElement | null>): void {
  const session = useSessionStore()
  let observer: ResizeObserver | undefined
  let last = -1

  function report(): void {
    const el = target.value
    if (!el) return
    const style = getComputedStyle(el)
    const height = Math.ceil(el.getBoundingClientRect().height + parseFloat(style.marginTop || '0') + parseFloat(style.marginBottom || '0'))
    if (height === last) return
    last = height
    session.reportHeight(height)
  }

  onMounted(() => {
    if (!target.value || typeof ResizeObserver === 'undefined') return
    observer = new ResizeObserver(report)
    observer.observe(target.value)
    report()
  })
  onBeforeUnmount(() => observer?.disconnect())
}
