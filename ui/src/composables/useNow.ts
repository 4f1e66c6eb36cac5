/** The current time, ticking every `everyMs` while the document is visible: for "12 s ago". */
import { onBeforeUnmount, onMounted, ref, type Ref } from 'vue'

export function useNow(everyMs = 1000): Ref<number> {
  const now = ref(Date.now())
  let timer: ReturnType<typeof setInterval> | null = null
  const tick = () => {
    now.value = Date.now()
  }
  const sync = () => {
    if (timer !== null) clearInterval(timer)
    timer = null
    if (document.visibilityState === 'hidden') return
    tick()
    timer = setInterval(tick, everyMs)
  }
  onMounted(() => {
    document.addEventListener('visibilitychange', sync)
    sync()
  })
  onBeforeUnmount(() => {
    document.removeEventListener('visibilitychange', sync)
    if (timer !== null) clearInterval(timer)
  })
  return now
}
