/** The community's Kit connection: load, connect with a key, test, disconnect. */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Connection, ConnectionTestResult } from '../../../shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { useSessionStore } from './session.ts'

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

  const status = computed(() => connection.value?.status ?? 'disconnected')
  const isConnected = computed(() => status.value === 'connected')

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
      session.toast(result.ok ? 'Connection works.' : 'The connection test failed.', result.ok ? 'success' : 'error')
    } catch (error) {
      testError.value = toApiError(error)
      session.toast('The connection test could not run.', 'error')
    } finally {
      testing.value = false
    }
  }

  async function disconnect(): Promise<boolean> {
    disconnecting.value = true
    disconnectError.value = null
    try {
      await api.disconnect()
      connection.value = { connected: false, status: 'disconnected', key_hint: null, account: null, updated_at: null }
      testResult.value = null
      testError.value = null
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
    status,
    isConnected,
    load,
    connect,
    test,
    disconnect,
  }
})
