/**
 * What the pipeline needs from the layers above it, as small interfaces: the services implement
 * them and are injected, so the pipeline never imports a service or a plugin.
 */
import type { ConsentMode, Mappings } from '#shared/api.ts'
import type { KitSubscriber } from './kit.ts'
import type { KnownKitState } from './planner.ts'

/**
 * Where a Kit request gets its OAuth access token. The Kit client asks before every attempt, so a
 * token replaced by a refresh is never sent again; how tokens are kept and refreshed is the
 * owner's business (services/oauth-tokens.ts), not the caller's.
 */
export interface AccessTokenSource {
  /** A token to send now: refreshed first once less than half of its life remains. */
  current(): Promise<string>
  /**
   * Kit refused `token` (401); `expired`: it said the token expired (then it is refreshed, once
   * for every caller that saw it). Answers whether another token is there to try once (`current`
   * gives it); throws a KitError `invalid_credentials` when Kit refuses the refresh (the
   * connection is then invalid).
   */
  replace(token: string, expired: boolean): Promise<boolean>
}

/** What a Kit request proves itself with: the API key, or an OAuth access token. */
export type KitAuth = { kind: 'api_key'; apiKey: string } | { kind: 'oauth'; tokens: AccessTokenSource }

/** How the connection was made: a pasted API key, or *Connect with Kit* (OAuth). */
export type CredentialKind = KitAuth['kind']

/**
 * A community's saved Kit credential as the pipeline sees it; `unreadable`: the server's key
 * cannot open it. `kind` tells a caller what the credential may do (Kit's bulk endpoints take
 * OAuth only); `auth` is handed to the Kit client as it is.
 */
export type StoredCredential =
  | { status: 'connected' | 'invalid'; kind: CredentialKind; auth: KitAuth; credentialId: string }
  | { status: 'unreadable'; kind: CredentialKind; auth: null; credentialId: string }

export interface CredentialSource {
  /** The community's saved credential, or null when none is saved. */
  credential(communityId: string): Promise<StoredCredential | null>
  /** Kit refused the credential: the connection turns invalid and its deliveries are held. */
  markInvalid(communityId: string, credentialId: string): Promise<void>
}

export interface MappingSource {
  get(communityId: string): Promise<Mappings>
  /** Kit gave this key for the field mapped from `source`: stored for the next deliveries. */
  learnFieldKey(communityId: string, source: string, key: string): Promise<void>
  /** Holds the id of a typed-in tag name once it is created or found in Kit. */
  holdTagId(communityId: string, name: string, tagId: number, replacing?: number | null): Promise<void>
}

/** The counters a consumer reports to. */
export interface DeliveryMetrics {
  eventsProcessed: { inc(labels: { status: string }): void }
  deliveryLatency: { observe(seconds: number): void }
}

/** The member the plugin is about to change in Kit itself. */
export interface OwnKitWrite {
  communityId: string
  credentialId: string
  memberId: string
  subscriberId: number
  /** What the plugin last wrote (or found) in Kit. */
  email: string
  firstName: string | null
}

/**
 * Told just before the plugin itself changes a member's state in Kit, so the Kit watch keeps it
 * as seen and never reports the plugin's own write back to the platform (contract §7).
 */
export interface OwnKitWrites {
  unsubscribing(write: OwnKitWrite): Promise<void>
}

/** Whose member, under which credential. */
export interface MemberKey {
  communityId: string
  credentialId: string
  memberId: string
}

/**
 * What the plugin knows of a member's state in Kit. A delivery hands over every subscriber Kit
 * answered with; what is news (an unsubscribe, a bounce, a complaint, a name or email changed in
 * Kit) is reported to the platform once, as the Kit watch does.
 */
export interface KitStateMemory {
  /** The state last seen, with when it was first learnt (null: never seen). */
  stateOf(key: MemberKey): Promise<KnownKitState | null>
  /** Kit answered with the member's subscriber: kept, news reported; the state as now known. */
  learned(key: MemberKey, subscriber: KitSubscriber): Promise<KnownKitState>
}

/** The community's consent setting: who may become a Kit subscriber. */
export interface ConsentSource {
  consentMode(communityId: string): Promise<ConsentMode>
}

/** A member erased from Kit as far as its API allows, under the credential it was done with. */
export interface ErasedMember {
  communityId: string
  memberId: string
  subscriberId: number
}

/**
 * Told after an erasing `user.deleted` succeeded: Kit's API cannot delete a subscriber, so the
 * person is listed for the owner to delete by hand in Kit's app.
 */
export interface ErasureList {
  erased(member: ErasedMember): Promise<void>
}

/**
 * A deleted member's personal data, purged once their last delivery settled (see
 * pipeline/personal-data.ts). Answers whether it was purged (false: not deleted, or work waits).
 */
export interface DeletedMemberData {
  forget(communityId: string, memberId: string): Promise<boolean>
}
