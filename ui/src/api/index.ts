/** Every settings API call the panel makes, typed with the shared DTOs. */
import type {
  Connection,
  ConsentMode,
  ConsentSetting,
  ConnectionTestResult,
  Delivery,
  DeliveryOrder,
  DeliveryPage,
  DeliveryStatus,
  ErasureList,
  KitCustomField,
  KitForm,
  KitSequence,
  KitTag,
  MappingHistoryPage,
  MappingPreview,
  Mappings,
  OAuthStart,
  OAuthStartBody,
  ReplayableDeliveries,
  RetryDeliveriesResult,
  Sync,
  SyncList,
  SyncPlan,
} from '#shared/api.ts'
import type { PlatformEventPage, PlatformEventState, PlatformEventSummary } from '#shared/platform-events.ts'
import { request } from './client.ts'

export interface DeliveryQuery {
  status?: DeliveryStatus | ''
  member?: string
  cursor?: string | null
  limit?: number
  order?: DeliveryOrder
}

interface Items<T> {
  items: T[]
}

const items = <T>(path: string) => request<Items<T>>(path).then((page) => page.items)

export const api = {
  getConnection: () => request<Connection>('/connection'),
  connect: (apiKey: string) => request<Connection>('/connection', { method: 'PUT', body: { api_key: apiKey } }),
  disconnect: () => request<void>('/connection', { method: 'DELETE' }),
  testConnection: () => request<ConnectionTestResult>('/connection/test', { method: 'POST' }),
  startKitOAuth: (body: OAuthStartBody = {}) => request<OAuthStart>('/connection/oauth/start', { method: 'POST', body }),

  getMappings: () => request<Mappings>('/mappings'),
  saveMappings: (mappings: Mappings) => request<Mappings>('/mappings', { method: 'PUT', body: mappings }),
  previewMappings: (draft: Mappings) => request<MappingPreview>('/mappings/preview', { method: 'POST', body: { draft } }),

  getConsent: () => request<ConsentSetting>('/consent'),
  setConsent: (mode: ConsentMode) => request<ConsentSetting>('/consent', { method: 'PUT', body: { mode } }),

  listTags: () => items<KitTag>('/kit/tags'),
  listCustomFields: () => items<KitCustomField>('/kit/custom-fields'),
  listForms: () => items<KitForm>('/kit/forms'),
  listSequences: () => items<KitSequence>('/kit/sequences'),

  listDeliveries: (query: DeliveryQuery) => request<DeliveryPage>('/deliveries', { query: { ...query } }),
  retryDelivery: (id: string) => request<Delivery>(`/deliveries/${encodeURIComponent(id)}/retry`, { method: 'POST' }),
  countReplayable: () => request<ReplayableDeliveries>('/deliveries/replayable'),
  replayNotConnected: () =>
    request<RetryDeliveriesResult>('/deliveries/retry', { method: 'POST', body: { status: 'skipped', reason: 'not_connected' } }),

  /** `columns`: the column mapping (JSON: file column → member field); none: the remembered one. */
  previewSync: (file: Blob, contentType: SyncContentType, columns?: string) =>
    request<SyncPlan>('/syncs', { method: 'POST', body: file, contentType, query: { dry_run: 'true', columns } }),
  startSync: (file: Blob, contentType: SyncContentType, columns?: string) =>
    request<Sync>('/syncs', { method: 'POST', body: file, contentType, query: { columns } }),
  listSyncs: () => request<SyncList>('/syncs'),
  getSync: (id: string) => request<Sync>(`/syncs/${encodeURIComponent(id)}`),
  controlSync: (id: string, verb: 'pause' | 'resume' | 'cancel') =>
    request<Sync>(`/syncs/${encodeURIComponent(id)}/${verb}`, { method: 'POST' }),

  getPlatformEventSummary: () => request<PlatformEventSummary>('/platform-events/summary'),
  listPlatformEvents: (query: { status?: PlatformEventState; cursor?: string | null; limit?: number }) =>
    request<PlatformEventPage>('/platform-events', { query: { ...query } }),
  retryPlatformEvent: (id: string) => request<void>(`/platform-events/${encodeURIComponent(id)}/retry`, { method: 'POST' }),

  listErasures: () => request<ErasureList>('/erasures'),
  markErasureDone: (memberId: string) => request<void>(`/erasures/${encodeURIComponent(memberId)}/done`, { method: 'POST' }),
  listMappingVersions: (query: { cursor?: string | null; limit?: number }) =>
    request<MappingHistoryPage>('/mappings/history', { query: { ...query } }),
  getMappingVersion: (version: number) => request<Mappings>(`/mappings/history/${version}`),
  restoreMappingVersion: (version: number) => request<Mappings>(`/mappings/history/${version}/restore`, { method: 'POST' }),
}

export type SyncContentType = 'text/csv' | 'application/x-ndjson'

export type Api = typeof api
