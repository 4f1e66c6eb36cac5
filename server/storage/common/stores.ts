/** The repositories both dialects share, over one dialect's runner. */
import type { Storage } from '../../core/storage.ts'
import { DeliveryReadStore } from './deliveries.ts'
import { OAuthStateStore } from './oauth-states.ts'
import type { SqlRunner } from './sql.ts'
import { SyncStore } from './syncs.ts'
import { ConnectionStore, HeldTagStore, MappingStore, SubscriberStore } from './tables.ts'

export type SharedStores = Pick<Storage, 'connections' | 'mappings' | 'heldTags' | 'subscribers' | 'deliveries' | 'syncs' | 'oauthStates'>

export function sharedStores(run: SqlRunner): SharedStores {
  return {
    connections: new ConnectionStore(run),
    mappings: new MappingStore(run),
    heldTags: new HeldTagStore(run),
    subscribers: new SubscriberStore(run),
    deliveries: new DeliveryReadStore(run),
    syncs: new SyncStore(run),
    oauthStates: new OAuthStateStore(run),
  }
}
