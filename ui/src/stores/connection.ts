/**
 * The community's Kit connection: load, connect with a key, test, disconnect; and whether Kit
 * itself answers right now (any Kit-backed call that finds it unreachable or busy says so here,
 * once, instead of every list showing its own error).
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Connection, ConnectionTestResult } from '#shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useSessionStore } from './session.ts'

/** Kit cannot be used right now although the key is fine: unreachable, or asking us to wait. */
export interface KitTrouble {
  kind: 'unreachable' | 'busy'
  message: string
  /** For `busy`: when it is worth trying again (epoch ms). */
  retryAt: number | null
}

/** Kit's own window when it rate-limits us and no Retry-After says otherwise. */
const KIT_BUSY_DEFAULT_S = 60

/** The trouble an error code means, or null when it is about something else (a key, a bad request). */
export function troubleFor(code: string, message: string, retryAfterS: number | null, now = Date.now()): KitTrouble | null {
  if (code === 'kit_unreachable') return { kind: 'unreachable', message, retryAt: null }
  if (code === 'kit_rate_limited' || code === 'kit_busy' || code === 'rate_limited') {
    return { kind: 'busy', message, retryAt: now + (retryAfterS ?? KIT_BUSY_DEFAULT_S) * 1000 }
  }
  return null
}

/** The trouble in the words the header and the test result use. */
export function troubleWords(trouble: KitTrouble, now = Date.now()): string {
  if (trouble.kind === 'unreachable') return 'Kit can’t be reached right now'
  const seconds = Math.max(1, Math.ceil(((trouble.retryAt ?? now) - now) / 1000))
  return `Kit is busy, try again in ${seconds} s`
}

export const useConnectionStore = defineStore('connection', () => {
  const session = useSessionStore()

  const connection = ref<Connection | null>(null)
  const loading = ref(false)
  const loadError = ref<ApiError | null>(null)

  const connecting = ref(false)
  const connectError = ref<ApiError | null>(null)

  const testing = ref(false)
  const testResult = ref<ConnectionTestResult | null>(null)
  const testError = ref<ApiError | null>(null)

  const disconnecting = ref(false)
  const disconnectError = ref<ApiError | null>(null)

  const kitTrouble = ref<KitTrouble | null>(null)

  const status = computed(() => connection.value?.status ?? 'disconnected')
  const isConnected = computed(() => status.value === 'connected')

  /** Records a Kit-wide failure; returns whether it was one (then callers show no error of their own). */
  function noteKitFailure(error: ApiError): boolean {
    const trouble = troubleFor(error.code, error.message, error.retryAfterS)
    if (trouble) kitTrouble.value = trouble
    return trouble !== null
  }

  function noteKitAnswered(): void {
    kitTrouble.value = null
  }

  async function load(): Promise<void> {
    loading.value = true
    loadError.value = null
    try {
      connection.value = await api.getConnection()
    } catch (error) {
      loadError.value = toApiError(error)
    } finally {
      loading.value = false
    }
  }

  async function connect(apiKey: string): Promise<boolean> {
    connecting.value = true
    connectError.value = null
    testResult.value = null
    testError.value = null
    try {
      connection.value = await api.connect(apiKey.trim())
      kitTrouble.value = null
      session.toast(`Connected to Kit${connection.value.account ? ` as ${connection.value.account.name}` : ''}.`, 'success')
      return true
    } catch (error) {
      connectError.value = toApiError(error)
      session.toast('Kit did not accept the connection.', 'error')
      return false
    } finally {
      connecting.value = false
    }
  }

  async function test(): Promise<void> {
    testing.value = true
    testError.value = null
    testResult.value = null
    try {
      const result = await api.testConnection()
      testResult.value = result
      if (result.ok) kitTrouble.value = null
      const trouble = result.ok ? null : troubleFor(result.error.code, result.error.message, null)
      if (trouble) kitTrouble.value = trouble
      session.toast(
        result.ok ? 'Connection works.' : trouble ? troubleWords(trouble) : 'The connection test failed.',
        result.ok ? 'success' : 'error',
      )
    } catch (error) {
      const failure = toApiError(error)
      testError.value = failure
      const trouble = noteKitFailure(failure) ? kitTrouble.value : null
      session.toast(trouble ? troubleWords(trouble) : 'The connection test could not run.', 'error')
    } finally {
      testing.value = false
    }
  }

  async function disconnect(): Promise<boolean> {
    disconnecting.value = true
    disconnectError.value = null
    try {
      await api.disconnect()
      const offered = connection.value?.oauth_available === true ? { oauth_available: true as const } : {}
      connection.value = { connected: false, status: 'disconnected', key_hint: null, account: null, updated_at: null, ...offered }
      testResult.value = null
      testError.value = null
      kitTrouble.value = null
      session.toast('Kit disconnected.', 'info')
      return true
    } catch (error) {
      disconnectError.value = toApiError(error)
      session.toast('Kit could not be disconnected.', 'error')
      return false
    } finally {
      disconnecting.value = false
    }
  }

  return {
    connection,
    loading,
    loadError,
    connecting,
    connectError,
    testing,
    testResult,
    testError,
    disconnecting,
    disconnectError,
    kitTrouble,
    status,
    isConnected,
    noteKitFailure,
    noteKitAnswered,
    load,
    connect,
    test,
    disconnect,
  }
})
