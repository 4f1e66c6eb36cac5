/**
 * Who the panel is talking to: the host bridge, the session token (kept in memory only, never in
 * reactive state, storage, cookies or URLs), the host's context, and whether the user may manage
 * the integration at all.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { HostContext, HostPayloads } from '#shared/host-protocol.ts'
import type { HostBridge } from '../host/bridge.ts'
import { tokenExpiry } from '../host/jwt.ts'

export type SessionPhase = 'connecting' | 'ready' | 'standalone' | 'failed'

/** Ask for a new token this long before the current one expires. */
const REFRESH_BEFORE_MS = 30_000
/** Never ask again sooner than this, even for a token that is already close to expiry. */
const MIN_REFRESH_DELAY_MS = 5_000

export const useSessionStore = defineStore('session', () => {
  const phase = ref<SessionPhase>('connecting')
  const context = ref<HostContext | null>(null)
  const forbidden = ref(false)
  const failure = ref<string | null>(null)
  /** The mappings editor holds unsaved changes (as told to the host). */
  const unsaved = ref(false)

  let bridge: HostBridge | null = null
  let token: string | null = null
  let refreshTimer: ReturnType<typeof setTimeout> | undefined
  let refreshing: Promise<string | null> | null = null

  function scheduleRefresh(value: string): void {
    clearTimeout(refreshTimer)
    const exp = tokenExpiry(value)
    if (exp === null || !bridge?.embedded) return
    const delay = Math.max(exp * 1000 - Date.now() - REFRESH_BEFORE_MS, MIN_REFRESH_DELAY_MS)
    refreshTimer = setTimeout(() => void refreshToken(), delay)
  }

  /** Uses this token for API calls from now on (the handshake calls it; tests may too). */
  function setToken(value: string, ctx?: HostContext): void {
    token = value
    if (ctx) context.value = ctx
    phase.value = 'ready'
    scheduleRefresh(value)
  }

  function currentToken(): string | null {
    return token
  }

  async function start(hostBridge: HostBridge, pluginVersion: string): Promise<void> {
    bridge = hostBridge
    if (!bridge.embedded) {
      phase.value = 'standalone'
      return
    }
    try {
      const ack = await bridge.handshake(pluginVersion)
      setToken(ack.token, ack.context)
    } catch (error) {
      phase.value = 'failed'
      failure.value = error instanceof Error ? error.message : 'App Station did not answer.'
    }
  }

  /** Asks the host for a fresh token; concurrent callers share one request. Null when none came. */
  function refreshToken(): Promise<string | null> {
    const host = bridge
    if (!host?.embedded) return Promise.resolve(null)
    refreshing ??= host
      .requestToken()
      .then(
        (fresh) => {
          setToken(fresh)
          return fresh
        },
        (error: unknown) => {
          failure.value = error instanceof Error ? error.message : 'App Station did not send a new token.'
          return null
        },
      )
      .finally(() => {
        refreshing = null
      })
    return refreshing
  }

  function markForbidden(): void {
    forbidden.value = true
  }

  function toast(message: string, variant: HostPayloads['ui.toast']['variant']): void {
    bridge?.send('ui.toast', { message, variant })
  }

  function reportDirty(dirty: boolean): void {
    unsaved.value = dirty
    bridge?.send('ui.dirty', { dirty })
  }

  function reportHeight(height: number): void {
    bridge?.send('ui.resize', { height })
  }

  function stop(): void {
    clearTimeout(refreshTimer)
    bridge?.dispose()
    bridge = null
    token = null
  }

  return {
    phase,
    context,
    forbidden,
    failure,
    unsaved,
    start,
    stop,
    setToken,
    currentToken,
    refreshToken,
    markForbidden,
    toast,
    reportDirty,
    reportHeight,
  }
})
