/**
 * Keeps a list fresh without a Refresh button: it re-reads every second just after the owner did
 * something here (or the list changed), every few seconds while something is on its way or shortly
 * after, backs off while nothing happens, wakes up just after a scheduled retry is due, and stops
 * while the document is hidden or the owner has been away; focus, visibility or any key or pointer
 * press brings it back at once.
 *
 * The settings API allows each user a fixed number of requests a minute across every panel they
 * have open, and a 429 would also refuse their next Save: so only the panel the owner is using
 * reads every second, and only for a short while; one left open with something pending reads a
 * third as often.
 */
import { onBeforeUnmount, onMounted } from 'vue'

export interface LiveSignals {
  /** Re-read; resolves to whether anything changed. */
  refresh: () => Promise<boolean>
  /** Something shown is still pending. */
  inFlight: () => boolean
  /** The earliest scheduled retry among what is shown (epoch ms). */
  nextDueAt: () => number | null
  /** When the list last changed (epoch ms). */
  changedAt: () => number
  /** How long the server asked us to wait (a 429's Retry-After), in seconds. */
  retryAfterS: () => number | null
}

export const LIVE_TIMING = {
  fastMs: 1000,
  /** While something is pending, or a little longer after an action or change. */
  warmMs: 3000,
  slowestMs: 15_000,
  growth: 1.6,
  /** How long after the owner's last action (or the list's last change) refreshes come every `fastMs`. */
  fastForMs: 10_000,
  /** How long after the owner's last action (or the list's last change) they still come every `warmMs`. */
  hotForMs: 30_000,
  /** No key or pointer press for this long: stop until the owner is back. */
  idleAfterMs: 5 * 60_000,
}

export function useLiveRefresh(signals: LiveSignals, timing = LIVE_TIMING): void {
  let timer: ReturnType<typeof setTimeout> | null = null
  let timerAt = 0
  let delay = timing.fastMs
  let lastActivity = Date.now()
  let running = false
  let disposed = false

  const hidden = () => typeof document !== 'undefined' && document.visibilityState === 'hidden'

  function clear(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
  }

  function nextWait(now: number): number {
    const retryAfter = signals.retryAfterS()
    if (retryAfter !== null) return Math.max(timing.fastMs, retryAfter * 1000)
    const since = now - Math.max(lastActivity, signals.changedAt())
    if (since < timing.fastForMs) delay = timing.fastMs
    else if (signals.inFlight() || since < timing.hotForMs) delay = timing.warmMs
    else delay = Math.min(timing.slowestMs, Math.round(Math.max(delay, timing.warmMs) * timing.growth))
    const due = signals.nextDueAt()
    return due !== null ? Math.min(delay, Math.max(timing.fastMs, due - now + 500)) : delay
  }

  /** Plans the next refresh; one already planned sooner is kept (so busy clicking never postpones it). */
  function schedule(): void {
    if (disposed || hidden()) return clear()
    const now = Date.now()
    if (now - lastActivity > timing.idleAfterMs) return clear()
    const wait = nextWait(now)
    if (timer !== null && timerAt <= now + wait) return
    clear()
    timerAt = now + wait
    timer = setTimeout(() => void tick(), wait)
  }

  async function tick(): Promise<void> {
    timer = null
    if (running || disposed) return
    running = true
    try {
      if (await signals.refresh()) delay = timing.fastMs
    } finally {
      running = false
    }
    schedule()
  }

  /** The owner did something: refreshes are fast again; after a pause, look now. */
  function onActivity(): void {
    const wasStopped = timer === null && !running
    lastActivity = Date.now()
    delay = timing.fastMs
    if (wasStopped) void tick()
    else schedule()
  }

  function onVisibility(): void {
    if (hidden()) clear()
    else onActivity()
  }

  onMounted(() => {
    document.addEventListener('visibilitychange', onVisibility)
    window.addEventListener('focus', onActivity)
    document.addEventListener('pointerdown', onActivity, true)
    document.addEventListener('keydown', onActivity, true)
    schedule()
  })
  onBeforeUnmount(() => {
    disposed = true
    clear()
    document.removeEventListener('visibilitychange', onVisibility)
    window.removeEventListener('focus', onActivity)
    document.removeEventListener('pointerdown', onActivity, true)
    document.removeEventListener('keydown', onActivity, true)
  })
}
