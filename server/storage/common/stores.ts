/** The repositories both dialects share, over one dialect's runner. */
import type { Storage } from '../../core/storage.ts'
import { DeliveryReadStore } from './deliveries.ts'
import { CommunitySettingsStore } from './settings.ts'
import { ErasureStore } from './erasures.ts'
import { MappingHistoryStore } from './mapping-history.ts'
import { OAuthStateStore } from './oauth-states.ts'
import type { SqlRunner } from './sql.ts'
import { SyncStore } from './syncs.ts'
import { ConnectionStore, HeldTagStore, MappingStore, SubscriberStore } from './tables.ts'

export type SharedStores = Pick<
  Storage,
  | 'connections'
  | 'mappings'
  | 'mappingHistory'
  | 'heldTags'
  | 'subscribers'
  | 'deliveries'
  | 'syncs'
  | 'settings'
  | 'erasures'
  | 'oauthStates'
>

export function sharedStores(run: SqlRunner): SharedStores {
  return {
    connections: new ConnectionStore(run),
    mappings: new MappingStore(run),
    mappingHistory: new MappingHistoryStore(run),
    heldTags: new HeldTagStore(run),
    subscribers: new SubscriberStore(run),
    deliveries: new DeliveryReadStore(run),
    syncs: new SyncStore(run),
    settings: new CommunitySettingsStore(run),
    erasures: new ErasureStore(run),
    oauthStates: new OAuthStateStore(run),
  }
}
