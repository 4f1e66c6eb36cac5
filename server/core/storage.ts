// Over 400 lines: every repository interface of the data layer, one per table, declared together so both dialects implement one list.
/**
 * The data layer behind one set of asynchronous repositories, one owner per table. Two dialects
 * implement it: SQLite (embedded default, one process per file) and PostgreSQL (several instances
 * sharing one database). Nothing outside `server/storage/` writes SQL.
 *
 * Tables and their owners:
 * - connections              → ConnectionRepository
 * - oauth_states,
 *   oauth_installs           → OAuthStateRepository
 * - mappings                 → MappingRepository
 * - mapping_versions         → MappingHistoryRepository (an owner's save writes the mappings row
 *                              through it too, in the same transaction as its version)
 * - held_tags                → HeldTagRepository
 * - kit_subscribers          → SubscriberRepository
 * - events, deliveries,
 *   ordering_marks           → DeliveryQueue (marks are written only as part of settling a delivery)
 * - syncs,
 *   sync_column_mappings     → SyncRepository (it stages a sync's events and deliveries through the
 *                              queue's tables in the same transaction, as the queue's intake does)
 * - kit_budget_ledger,
 *   kit_budget_blocks        → BudgetLedger (PostgreSQL only in use; the embedded budget is in memory)
 * - kit_tags                 → KnownTagRepository (PostgreSQL only in use; one process has one cache)
 * - rate_limits              → RateLimitCounter (PostgreSQL only in use; one process counts in memory)
 * - community_settings       → CommunitySettingsRepository (declared at the end)
 * - kit_erasures             → ErasureRepository (declared below the list, with the Kit watch's tables)
 */
import type { CredentialKind } from './ports.ts'
import type { DeliveryQueue } from './queue.ts'
import type { ReasonCode } from './reasons.ts'

export type Dialect = 'sqlite' | 'postgres'

export interface ConnectionRecord {
  communityId: string
  /** The sealed API key, or the sealed access token of an OAuth grant (new with every refresh). */
  apiKeyCiphertext: string
  keyHint: string
  status: 'connected' | 'invalid'
  accountJson: string | null
  credentialId: string
  createdAt: string
  updatedAt: string
  kind: CredentialKind
  /** OAuth only: the sealed refresh token. */
  refreshTokenCiphertext: string | null
  /** OAuth only: when the access token expires, and when half its life is over (epoch ms). */
  tokenExpiresAt: number | null
  tokenRefreshAt: number | null
  /** OAuth only: until when one instance holds the right to refresh the token (epoch ms). */
  refreshLeaseUntil: number | null
}

/** A refreshed OAuth grant, sealed. */
export interface RefreshedTokens {
  apiKeyCiphertext: string
  refreshTokenCiphertext: string
  /** Null when Kit did not say how long the token lives. */
  tokenExpiresAt: number | null
  tokenRefreshAt: number | null
}

export interface ConnectionRepository {
  get(communityId: string): Promise<ConnectionRecord | undefined>
  /** Whether the community has a saved key (working or not). */
  exists(communityId: string): Promise<boolean>
  all(): Promise<ConnectionRecord[]>
  /** Community id → credential id, for connections whose status is `connected`. */
  connectedCredentials(): Promise<Map<string, string>>
  /** Inserts or replaces the community's connection; `createdAt` is kept when it exists. */
  save(record: ConnectionRecord): Promise<void>
  /** Changes these columns; when `onlyIf` is given, only while the row still has those values. Returns whether a row changed. */
  update(
    communityId: string,
    set: Partial<Pick<ConnectionRecord, 'status' | 'accountJson' | 'apiKeyCiphertext' | 'refreshTokenCiphertext' | 'updatedAt'>>,
    onlyIf?: Partial<Pick<ConnectionRecord, 'status' | 'apiKeyCiphertext'>>,
  ): Promise<boolean>
  delete(communityId: string): Promise<void>
  /**
   * Takes the right to refresh the community's OAuth token, for every instance, until `until`:
   * only while the row still holds `accessCiphertext` and nobody else holds an unexpired right.
   */
  claimRefresh(communityId: string, accessCiphertext: string, now: number, until: number): Promise<boolean>
  /** Stores refreshed tokens and gives the right up, only while the row still holds `accessCiphertext`. */
  saveRefreshed(communityId: string, accessCiphertext: string, tokens: RefreshedTokens): Promise<boolean>
  /** Gives the right to refresh up (a refresh that failed), while the row still holds `accessCiphertext`. */
  releaseRefresh(communityId: string, accessCiphertext: string): Promise<void>
}

/** An authorization started from the panel, waiting for Kit to send the owner back. */
export interface OAuthStateRecord {
  /** SHA-256 (hex) of the `state` sent to Kit: the state itself is never stored. */
  stateHash: string
  communityId: string
  /** The session that started it: the session token's `sub`. */
  sessionSub: string
  verifierCiphertext: string
  /** Kit's page to send the owner back to (an install begun in Kit's App Store), or null. */
  returnTo: string | null
  createdAt: number
  expiresAt: number
  usedAt: number | null
}

/** An install begun in Kit's App Store, waiting to be finished from the panel. */
export interface OAuthInstallRecord {
  /** SHA-256 (hex) of the code shown to the owner. */
  codeHash: string
  returnTo: string
  createdAt: number
  expiresAt: number
  usedAt: number | null
}

export interface OAuthStateRepository {
  /** Stores a new state; the same session's earlier unused states for the community are dropped (only the newest counts). */
  start(record: OAuthStateRecord): Promise<void>
  /**
   * Marks the state used and answers it, once: a second call, an unknown or an expired state
   * answers why not. Expired and used rows are kept a while, so a late or repeated callback is told so.
   */
  use(stateHash: string, now: number): Promise<{ state: OAuthStateRecord } | { refused: 'unknown' | 'used' | 'expired' }>
  saveInstall(record: OAuthInstallRecord): Promise<void>
  /** Marks the install used and answers it, once; null for an unknown, used or expired code. */
  useInstall(codeHash: string, now: number): Promise<OAuthInstallRecord | null>
  /** Deletes rows that expired before `before`. */
  purge(before: number): Promise<number>
}

export interface MappingRecord {
  communityId: string
  /** The mappings document, JSON. */
  document: string
  updatedAt: string
}

export interface MappingRepository {
  get(communityId: string): Promise<MappingRecord | undefined>
  save(record: MappingRecord): Promise<void>
  /**
   * Replaces the document only if it is still `expectedDocument` (what the caller read), so a
   * change saved meanwhile, perhaps on another instance, is never overwritten. Returns whether it was.
   */
  replace(record: MappingRecord, expectedDocument: string): Promise<boolean>
  /** Stores the document only if the community has none yet. Returns whether it was stored. */
  create(record: MappingRecord): Promise<boolean>
}

/**
 * The Kit tag each tag name of a community's mappings stands for, per credential, by lower-cased
 * (filled-in) name: held from its first use, so a rename in Kit changes nothing. The source of the
 * id for templated names; for plain names the mapping document holds the id and this records that
 * the plugin, not the owner, chose it.
 */
export interface HeldTagRepository {
  find(communityId: string, credentialId: string, name: string): Promise<number | null>
  /** Holds `tagId` for the name (replacing the id it held, which Kit no longer has). */
  hold(communityId: string, credentialId: string, name: string, tagId: number, now: number): Promise<void>
  /** Whether the plugin itself held `tagId` for this name, under any credential (not an owner's pick). */
  isHeld(communityId: string, name: string, tagId: number): Promise<boolean>
}

/** What the plugin last wrote to Kit for one member under one credential. */
export interface SubscriberRecord {
  communityId: string
  credentialId: string
  memberId: string
  email: string
  subscriberId: number
  firstName: string | null
  /** JSON object: field key → value (null: Kit has no value). */
  fields: string
  updatedAt: number
}

export interface SubscriberKey {
  communityId: string
  credentialId: string
  memberId: string
}

export interface SubscriberRepository {
  get(key: SubscriberKey): Promise<SubscriberRecord | undefined>
  save(record: SubscriberRecord): Promise<void>
  forget(key: SubscriberKey): Promise<void>
  /** Forgets what was written to Kit for the member under every credential (a deleted member's purge). */
  forgetMember(communityId: string, memberId: string): Promise<void>
}

/** A sync row as stored (snake_case, as the service reads it). */
export interface SyncRecord {
  id: string
  community_id: string
  status: 'importing' | 'running' | 'paused' | 'completed' | 'cancelled'
  format: 'csv' | 'jsonl'
  started_at: number
  total: number
  refused: number
  refused_examples: string
  done: number | null
  failed: number | null
  skipped: number | null
  kit_requests: number | null
  finished_at: number | null
  updated_at: number
}

/** One member of a sync file, as an event and its held delivery. */
export interface StagedSnapshot {
  deliveryId: string
  eventId: string
  memberId: string
  memberEmail: string
  /** The snapshot event, JSON. */
  payload: string
}

export interface SyncProgressRow {
  status: string
  n: number
  /** Kit requests made by the deliveries in this status. */
  k: number
}

export interface SyncRepository {
  /** A new sync in status `importing`. */
  create(sync: { id: string; communityId: string; format: 'csv' | 'jsonl'; startedAt: number }): Promise<void>
  /**
   * Stores members as events and `held` deliveries (priority 1, `last_error` = heldReason), in one
   * transaction; event time and received time are the sync's start.
   */
  stage(
    sync: { id: string; communityId: string; startedAt: number; eventType: string; heldReason: ReasonCode },
    members: StagedSnapshot[],
  ): Promise<void>
  /** The whole file was read: its deliveries become pending and the sync `running`, in one durable commit. */
  accept(id: string, totals: { total: number; refused: number; refusedExamples: string }, now: number): Promise<void>
  /** Deletes a sync that was never accepted, with its events and deliveries. */
  discard(id: string): Promise<void>
  /** Ids of syncs still `importing` that started before this time (epoch ms). */
  importing(startedBefore: number): Promise<string[]>
  get(communityId: string, id: string): Promise<SyncRecord | undefined>
  /** The community's most recent syncs (not `importing`), newest first. */
  recent(communityId: string, limit: number): Promise<SyncRecord[]>
  /** The sync's deliveries counted by status. */
  progress(id: string): Promise<SyncProgressRow[]>
  /** Records the final counts of a finished sync. */
  finish(
    id: string,
    status: 'completed' | 'cancelled',
    counts: { done: number; failed: number; skipped: number; kitRequests: number },
    now: number,
  ): Promise<void>
  /** Waiting deliveries not in flight become `held` with the reason; the sync `paused`. */
  pause(id: string, reason: ReasonCode, now: number): Promise<void>
  /** Held deliveries become pending; the sync `running`. */
  resume(id: string, now: number): Promise<void>
  /** Waiting and held deliveries not in flight become `skipped` with the reason; the sync `cancelled`. */
  cancel(id: string, reason: ReasonCode, now: number): Promise<void>
  /** The community's remembered column mapping (JSON), if an import stored one. */
  columnMapping(communityId: string): Promise<string | undefined>
  /** Stores (replaces) the community's column mapping. */
  saveColumnMapping(communityId: string, mapping: string, now: number): Promise<void>
}

/** A stored delivery as the owner's Activity reads it. */
export interface DeliveryRecord {
  seq: number
  id: string
  event_id: string
  event_type: string
  member_id: string
  member_email: string
  status: string
  attempts: number
  last_error: string | null
  reason: string | null
  kit_requests: number
  /** JSON array of DeliveryStep. */
  steps: string
  next_attempt_at: number
  created_at: string
  updated_at: string
}

export interface DeliveryReadFilter {
  /** Internal statuses to include; all when absent. */
  statuses?: string[]
  /** Lower-cased substring of the member's email (matched literally, no wildcards). */
  memberEmailContains?: string
  /** Only rows with seq after (`oldest`) or before (`newest`) this one. */
  afterSeq?: number
  beforeSeq?: number
  order: 'newest' | 'oldest'
  limit: number
}

export interface DeliveryReads {
  list(communityId: string, filter: DeliveryReadFilter): Promise<DeliveryRecord[]>
  get(communityId: string, deliveryId: string): Promise<DeliveryRecord | undefined>
  /** Skipped deliveries with this reason code: count by event type, and distinct members. */
  skippedSummary(communityId: string, reason: ReasonCode): Promise<{ types: { event_type: string; count: number }[]; members: number }>
}

/** One Kit request recorded in the shared rolling window. */
export interface BudgetTicket {
  id: string
}

export interface BudgetLedger {
  /**
   * Records a request about to be sent for the credential if fewer than `capacity` requests were
   * sent in the last `windowMs` (counting each from when it was taken to `windowMs` after it was
   * done) and no block is on; otherwise says when to ask again (epoch ms). With a ticket come
   * the 429 strikes on record for the credential (absent or 0: none).
   */
  take(credentialId: string, capacity: number, windowMs: number): Promise<{ ticket: BudgetTicket; strikes?: number } | { until: number }>
  /** The request was answered (or failed): its slot frees `windowMs` after now. */
  done(ticket: BudgetTicket): Promise<void>
  /**
   * Kit answered 429: nobody sends for this credential for a while. The first 429 after any
   * block ended is one more strike, and the block lasts `penalty.firstMs` doubled for each strike
   * before it, at most `penalty.maxMs`; a 429 while a block holds (a request sent before it began)
   * changes nothing. Answers the block's end (epoch ms, this process's clock) and the strikes.
   */
  block(credentialId: string, penalty: BlockPenalty): Promise<{ until: number; strikes: number }>
  /** Kit answered a request sent after the last block ended: the strikes are forgotten. */
  forgive(credentialId: string): Promise<void>
}

/** How long 429 blocks last: the first, and the longest any grows to. */
export interface BlockPenalty {
  firstMs: number
  maxMs: number
}

/** Kit tag ids the instances learnt, shared so that one instance's stale tag list misses nothing another created. */
export interface KnownTagRepository {
  /** Records the tag's id under its lower-cased name. */
  remember(credentialId: string, name: string, tagId: number, now: number): Promise<void>
  /** The id recorded under this lower-cased name at or after `since` (epoch ms), or null. */
  find(credentialId: string, name: string, since: number): Promise<number | null>
}

/** Request allowances counted across every instance that shares the database. */
export interface RateLimitCounter {
  /**
   * Counts one request under `key` in its fixed window of `windowMs` (opened by the window's first
   * request): the requests counted so far in that window and the ms until it resets.
   */
  hit(key: string, windowMs: number): Promise<{ hits: number; resetsInMs: number }>
}

export interface Storage {
  readonly dialect: Dialect
  readonly connections: ConnectionRepository
  readonly mappings: MappingRepository
  readonly heldTags: HeldTagRepository
  readonly subscribers: SubscriberRepository
  readonly queue: DeliveryQueue
  readonly deliveries: DeliveryReads
  readonly syncs: SyncRepository
  /** Present when several instances share the database: Kit's budget is counted across them. */
  readonly ledger: BudgetLedger | null
  /** Present when several instances share the database: tag ids one instance learnt, for the others. */
  readonly knownTags: KnownTagRepository | null
  /** Present when several instances share the database: request allowances counted across them. */
  readonly rateLimits: RateLimitCounter | null
  /** Database reachable and every migration applied. */
  health(): Promise<{ database: 'ok' | 'unreachable'; migrations: 'ok' | 'pending' | 'unknown' }>
  close(): Promise<void>
}

/** Events to the platform: `pending` until a 2xx answer (`sent`), `failed` once retries ran out. */
export type PlatformEventState = 'pending' | 'sent' | 'failed'

/** A new row of the platform outbox (tables platform_events, platform_failures → PlatformOutbox). */
export interface NewPlatformEvent {
  id: string
  communityId: string
  type: string
  memberId: string | null
  /** Held once per community: a second event with the same key is not stored. */
  onceKey: string | null
  /** The CloudEvent, JSON, exactly as it is sent on every attempt. */
  body: string
  observedAt: number
  /** Epoch ms after which a failed attempt marks the event failed. */
  giveUpAt: number
}

export interface PlatformEventRecord {
  seq: number
  id: string
  communityId: string
  type: string
  memberId: string | null
  body: string
  state: PlatformEventState
  attempts: number
  /** A code: `http_<status>`, `timeout`, `network`. */
  lastError: string | null
  nextAttemptAt: number
  giveUpAt: number
  observedAt: number
  createdAt: number
  updatedAt: number
  sentAt: number | null
}

/** What became of one attempt: sent, tried again at `nextAttemptAt`, or failed for good. */
export type PlatformEventOutcome =
  { state: 'sent' } | { state: 'pending'; nextAttemptAt: number; lastError: string } | { state: 'failed'; lastError: string }

/** Failed deliveries not yet reported: how many, and each reason code with its count, commonest first. */
export interface FailureTally {
  failed: number
  reasons: { reason: string; count: number }[]
}

export interface PlatformOutbox {
  /** Stores the event as pending, due now. False when its `onceKey` is already held (nothing stored). */
  add(event: NewPlatformEvent, now: number): Promise<boolean>
  /**
   * Leases up to `limit` due events until `now + leaseMs`, never two of one member at once and
   * never one while an earlier event of the same member is still pending.
   */
  claim(owner: string, now: number, leaseMs: number, limit: number): Promise<PlatformEventRecord[]>
  /** Records an attempt's outcome, if `owner` still holds the lease. Returns whether it did. */
  settle(seq: number, owner: string, outcome: PlatformEventOutcome, now: number): Promise<boolean>
  /** Ends every lease (one process owns an embedded database: at its start, none is alive). */
  releaseLeases(): Promise<void>
  /** The earliest due time of a pending event, or null. */
  nextDue(): Promise<number | null>
  /**
   * The platform answered again after failing: every event waiting for its next retry is due now,
   * instead of each waiting out its own backoff. Returns how many were brought forward.
   */
  expedite(now: number): Promise<number>
  /** The community's events, newest first, before `beforeSeq` when given. */
  list(communityId: string, filter: { state?: PlatformEventState; beforeSeq?: number; limit: number }): Promise<PlatformEventRecord[]>
  get(communityId: string, id: string): Promise<PlatformEventRecord | undefined>
  /** A failed event becomes pending again, due now, retried until `giveUpAt`. Returns whether it did. */
  retry(communityId: string, id: string, now: number, giveUpAt: number): Promise<boolean>
  /** The community's events created at or after `since`, counted by type and state. */
  summary(communityId: string, since: number): Promise<{ type: string; state: PlatformEventState; count: number }[]>
  /** A delivery failed for good with this reason code. */
  recordFailure(communityId: string, reason: string, now: number): Promise<void>
  /**
   * When no `kit.deliveries.failing` event of the community was created after `quietSince` and
   * failures wait unreported: marks them reported and stores the event `build` makes of their
   * tally, in one transaction. Returns the stored event, or null.
   */
  reportFailures(
    communityId: string,
    quietSince: number,
    now: number,
    build: (tally: FailureTally) => NewPlatformEvent,
  ): Promise<NewPlatformEvent | null>
  /** Communities with failures not yet reported and no failure notice since `quietSince`: those a report would tell. */
  unreportedFailures(quietSince: number): Promise<string[]>
  /**
   * Retention: up to `limit` finished events (sent or failed) last changed before `before` are
   * deleted; one that holds a member's reported state keeps its row, the guard, with its body
   * (email, name) emptied. Reported failures from before then are deleted. Returns the rows changed.
   */
  purge(before: number, limit: number): Promise<number>
}

// Declared apart (interfaces merge) so the outbox joins the storage without touching the list above.
export interface Storage {
  readonly platformOutbox: PlatformOutbox
}

/** What the plugin last saw of a member's Kit side (table kit_member_states → KitStateRepository). */
export interface KitMemberState {
  subscriberId: number
  /** Kit's state code: `active`, `inactive`, `cancelled`, `bounced`, `complained`. */
  state: string
  /** When the plugin learnt this state (epoch ms). */
  stateLearnedAt: number
  firstName: string | null
  email: string
}

/** A member the plugin knows in Kit: the link and what it last wrote (kit_subscribers), with what it last saw. */
export interface KnownKitMember {
  memberId: string
  subscriberId: number
  /** The email and first name the plugin last wrote (or found) in Kit. */
  writtenEmail: string
  writtenFirstName: string | null
  seen: KitMemberState | null
}

/** A Kit webhook registered for a connection, found by the token in its target path. */
export interface KitWebhookRecord {
  token: string
  communityId: string
  credentialId: string
  /** Kit's event name, e.g. `subscriber.subscriber_unsubscribe`. */
  event: string
  kitWebhookId: number | null
  createdAt: number
}

/**
 * Tables kit_member_states, kit_watch_polls and kit_webhooks (this repository owns them); it also
 * reads kit_subscribers, which SubscriberRepository writes.
 */
export interface KitStateRepository {
  /** The community's members linked to any of these Kit subscribers, by subscriber id or (lower-cased) email. */
  known(communityId: string, credentialId: string, subscribers: { id: number; email: string }[]): Promise<KnownKitMember[]>
  /** What was last seen of the member's Kit side under the credential (null: nothing yet). */
  seen(communityId: string, credentialId: string, memberId: string): Promise<KitMemberState | null>
  /** Stores what was last seen of the member's Kit side. */
  record(communityId: string, credentialId: string, memberId: string, state: KitMemberState, now: number): Promise<void>
  /**
   * Claims the connection's poll when it is due: moves it `intervalMs` ahead in the same statement,
   * so one instance polls per interval, and answers from when the last complete poll looked. A
   * connection (or credential) seen for the first time starts being watched from `now`, its first
   * poll due an interval later. Not claimed: when the poll is due (epoch ms).
   */
  claimPoll(communityId: string, credentialId: string, now: number, intervalMs: number): Promise<{ polledFrom: number } | { dueAt: number }>
  /** A complete poll that started at `from`: the next looks from there. */
  pollDone(communityId: string, from: number): Promise<void>
  saveWebhook(record: KitWebhookRecord): Promise<void>
  webhookByToken(token: string): Promise<KitWebhookRecord | undefined>
  webhooks(communityId: string): Promise<KitWebhookRecord[]>
  /** Forgets the connection's webhooks and its poll row. */
  forgetConnection(communityId: string): Promise<void>
  forgetWebhook(token: string): Promise<void>
  /** Forgets what was seen of the member in Kit under every credential (erasure). */
  forgetMember(communityId: string, memberId: string): Promise<void>
}

// Declared apart (interfaces merge) so the Kit watch joins the storage without touching the list above.
export interface Storage {
  readonly kitStates: KitStateRepository
}

/** A community's settings row (table community_settings); no row means the defaults. */
export interface CommunitySettingsRecord {
  /** The consent mode code as stored: `all_members` or `marketing_consent` (the service reads it). */
  consentMode: string
  /** When the owner last saved it (epoch ms). */
  updatedAt: number
}

/** Table community_settings: one row per community, read on every delivery by its primary key. */
export interface CommunitySettingsRepository {
  get(communityId: string): Promise<CommunitySettingsRecord | undefined>
  /** Inserts or replaces the community's consent mode. */
  saveConsentMode(communityId: string, consentMode: string, now: number): Promise<void>
}

// Declared apart (interfaces merge) so the settings join the storage without touching the list above.
export interface Storage {
  readonly settings: CommunitySettingsRepository
}

/**
 * A member erased from Kit as far as its API allows, for the owner to delete by hand in Kit's app
 * (table kit_erasures → ErasureRepository). No email or name: the member id and Kit's subscriber id.
 */
export interface ErasureRecord {
  communityId: string
  memberId: string
  subscriberId: number
  /** When the erasure succeeded (epoch ms). */
  erasedAt: number
  /** When the owner said they deleted the person in Kit (null: still to do). */
  doneAt: number | null
}

export interface ErasureRepository {
  /** Lists the subscriber (again, when erased once more: a subscriber Kit still has is still to delete). */
  record(communityId: string, memberId: string, subscriberId: number, now: number): Promise<void>
  /** The community's erasures still to do, newest first. */
  pending(communityId: string, limit: number): Promise<ErasureRecord[]>
  /** The owner deleted the member in Kit: every pending row of theirs is done. Returns the rows changed. */
  done(communityId: string, memberId: string, now: number): Promise<number>
  /** Retention: rows done before `before` are deleted (pending ones stay, whatever their age). Returns the rows deleted. */
  purgeDone(before: number): Promise<number>
}

// Declared apart (interfaces merge), like the outbox and the Kit watch.
export interface Storage {
  readonly erasures: ErasureRepository
}

/** One saved version of a community's mapping document (table mapping_versions → MappingHistoryRepository). */
export interface MappingVersionRecord {
  communityId: string
  /** From 0, increasing per community. */
  version: number
  /** The mappings document as saved, JSON. */
  document: string
  /** The session token's `sub` of whoever saved it; null for version 0 (what was in place before the first save). */
  savedBy: string | null
  /** Epoch ms. */
  savedAt: number
  /** The change from what it replaced, in words. */
  change: string
  /** The version this save restored, when it was a restore. */
  restoredFrom: number | null
}

/** A version as a list shows it: everything but the document. */
export type MappingVersionSummary = Omit<MappingVersionRecord, 'document'>

/** An owner's save: the new document and the version that records it. */
export interface MappingSave {
  communityId: string
  /** The document to store, JSON. */
  document: string
  /** The stored document this save replaces, as read; null when the community has none stored yet. */
  expected: string | null
  savedBy: string
  savedAt: number
  change: string
  restoredFrom: number | null
  /** Kept as version 0 when the community has no version yet (its first save): what was in place before. */
  baseline: { document: string; savedAt: number; change: string }
}

/**
 * Table mapping_versions (this repository owns it). An owner's save goes through `save`, which also
 * writes the community's row of `mappings` (MappingRepository's table) in the same transaction, so
 * the document in force and its newest version never disagree, even after a crash; the plugin's own
 * edits of the document (ids Kit gave) go through MappingRepository and make no version.
 */
export interface MappingHistoryRepository {
  /**
   * Stores the document as the community's mappings, only while the stored one is still `expected`,
   * and records it as the next version (and the baseline as version 0 on the first save), in one
   * transaction. Returns the new version, or null when the document changed meanwhile (nothing written).
   */
  save(save: MappingSave): Promise<number | null>
  /** The community's versions, newest first, below `beforeVersion` when given. */
  list(communityId: string, page: { beforeVersion?: number; limit: number }): Promise<MappingVersionSummary[]>
  get(communityId: string, version: number): Promise<MappingVersionRecord | undefined>
  /**
   * Retention: deletes up to `limit` versions saved before `before` (epoch ms), never one of a
   * community's newest `keep`. Returns how many it deleted.
   */
  purge(before: number, keep: number, limit: number): Promise<number>
}

// Declared apart (interfaces merge) so the history joins the storage without touching the list above.
export interface Storage {
  readonly mappingHistory: MappingHistoryRepository
}

// Likewise for Connect with Kit.
export interface Storage {
  readonly oauthStates: OAuthStateRepository
}
