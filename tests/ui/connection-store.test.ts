import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import { ApiError } from '../../ui/src/api/client.ts'
import { useConnectionStore } from '../../ui/src/stores/connection.ts'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { aConnection, aDisconnectedConnection } from './factories.ts'

vi.mock('../../ui/src/api/index.ts')

describe('connection store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.resetAllMocks()
  })

  it('loads the connection', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aConnection())
    const store = useConnectionStore()
    await store.load()
    expect(store.isConnected).toBe(true)
    expect(store.connection?.account?.name).toBe('Ada’s Newsletter')
  })

  it('keeps the load error to show it', async () => {
    vi.mocked(api.getConnection).mockRejectedValue(new ApiError(500, 'internal', 'Something went wrong'))
    const store = useConnectionStore()
    await store.load()
    expect(store.loadError).toMatchObject({ code: 'internal' })
    expect(store.connection).toBeNull()
  })

  it('connects with a trimmed key and tells the host', async () => {
    vi.mocked(api.connect).mockResolvedValue(aConnection())
    const toast = vi.spyOn(useSessionStore(), 'toast')
    const store = useConnectionStore()
    expect(await store.connect('  kit_key  ')).toBe(true)
    expect(api.connect).toHaveBeenCalledWith('kit_key')
    expect(toast).toHaveBeenCalledWith('Connected to Kit as Ada’s Newsletter.', 'success')
  })

  it('keeps Kit’s rejection and the previous connection', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aDisconnectedConnection())
    vi.mocked(api.connect).mockRejectedValue(new ApiError(422, 'kit_rejected_key', 'Kit rejected this API key (The API key is invalid).'))
    const store = useConnectionStore()
    await store.load()
    expect(await store.connect('bad')).toBe(false)
    expect(store.connectError).toMatchObject({ code: 'kit_rejected_key' })
    expect(store.status).toBe('disconnected')
  })

  it('tests the connection and keeps the result', async () => {
    vi.mocked(api.testConnection).mockResolvedValue({
      ok: false,
      error: { code: 'kit_rejected_key', message: 'Kit no longer accepts the key.' },
    })
    const store = useConnectionStore()
    await store.test()
    expect(store.testResult).toMatchObject({ ok: false })
  })

  it('is disconnected after disconnecting', async () => {
    vi.mocked(api.getConnection).mockResolvedValue(aConnection())
    vi.mocked(api.disconnect).mockResolvedValue(undefined)
    const store = useConnectionStore()
    await store.load()
    expect(await store.disconnect()).toBe(true)
    expect(store.status).toBe('disconnected')
    expect(store.connection?.account).toBeNull()
  })
})
