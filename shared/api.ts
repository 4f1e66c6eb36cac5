/**
 * The settings API's shapes, defined once: the server validates and serialises with
 * these schemas, the panel uses their static types.
 */
import { Type, type Static } from 'typebox'
import { CONDITION_LIMITS } from './conditions.ts'
import { EVENT_TYPES } from './events.ts'
import { LIMITS } from './limits.ts'

export { LIMITS }

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
})
export type ErrorBody = Static<typeof ErrorBody>

export const KitAccount = Type.Object({
  id: Type.Union([Type.Integer(), Type.String()]),
  name: Type.String(),
  primary_email_address: Type.String(),
  plan_type: Type.Union([Type.String(), Type.Null()]),
})
export type KitAccount = Static<typeof KitAccount>

export const ConnectionStatus = Type.Union([Type.Literal('connected'), Type.Literal('invalid'), Type.Literal('disconnected')])

export const Connection = Type.Object({
  connected: Type.Boolean(),
  status: ConnectionStatus,
  key_hint: Type.Union([Type.String(), Type.Null()]),
  account: Type.Union([KitAccount, Type.Null()]),
  updated_at: Type.Union([Type.String(), Type.Null()]),
  /** Set when the connection is invalid because the saved key can no longer be read: what to do, in words. */
  message: Type.Optional(Type.String()),
  /** How the connection was made: a pasted API key, or *Connect with Kit* (OAuth); absent when none is saved. */
  kind: Type.Optional(Type.Union([Type.Literal('api_key'), Type.Literal('oauth')])),
  /** True when *Connect with Kit* is offered (the server has a Kit app's OAuth client and a public URL); absent otherwise. */
  oauth_available: Type.Optional(Type.Literal(true)),
})
export type Connection = Static<typeof Connection>

/** Where the panel's popup opens Kit's consent page for *Connect with Kit*. */
export const OAuthStartBody = Type.Object(
  {
    /** The code the install page showed, when the install began in Kit's App Store. */
    install_code: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
  },
  { additionalProperties: false },
)
export type OAuthStartBody = Static<typeof OAuthStartBody>

export const OAuthStart = Type.Object({ authorize_url: Type.String() })
export type OAuthStart = Static<typeof OAuthStart>

/**
 * What the callback page tells the panel that opened it, with postMessage to the panel's exact
 * origin: the outcome only — never a token, a code from Kit, or a state.
 */
export interface OAuthResultMessage {
  type: 'kit-oauth'
  ok: boolean
  /** Why not, when `ok` is false (a code of OAUTH_FAILURES in shared/oauth.ts). */
  code?: string
}

export const PutConnectionBody = Type.Object(
  { api_key: Type.String({ minLength: 1, maxLength: LIMITS.apiKeyMax }) },
  { additionalProperties: false },
)

export const TagRef = Type.Object(
  {
    id: Type.Optional(Type.Integer({ minimum: 1 })),
    name: Type.String({ minLength: 1, maxLength: LIMITS.tagNameMax }),
  },
  { additionalProperties: false },
)
export type TagRef = Static<typeof TagRef>

export const KitRef = Type.Object(
  { id: Type.Integer({ minimum: 1 }), name: Type.String({ maxLength: LIMITS.tagNameMax }) },
  { additionalProperties: false },
)
export type KitRef = Static<typeof KitRef>

export const Condition = Type.Object(
  {
    field: Type.String({ minLength: 1, maxLength: 80 }),
    op: Type.Union([
      Type.Literal('is'),
      Type.Literal('is_not'),
      Type.Literal('is_one_of'),
      Type.Literal('is_not_one_of'),
      Type.Literal('is_set'),
      Type.Literal('is_empty'),
      Type.Literal('contains'),
      Type.Literal('starts_with'),
      Type.Literal('ends_with'),
    ]),
    value: Type.Optional(Type.String({ maxLength: CONDITION_LIMITS.valueMax })),
    values: Type.Optional(Type.Array(Type.String({ maxLength: CONDITION_LIMITS.valueMax }), { maxItems: CONDITION_LIMITS.values })),
  },
  { additionalProperties: false },
)
export const Conditions = Type.Array(Condition, { maxItems: CONDITION_LIMITS.conditions })

/** The actions of one rule; the event mapping's own actions are the same, without conditions. */
const ruleActions = {
  add_tags: Type.Array(TagRef, { maxItems: LIMITS.tagsPerList }),
  remove_tags: Type.Array(TagRef, { maxItems: LIMITS.tagsPerList }),
  add_to_forms: Type.Array(KitRef, { maxItems: LIMITS.listsPerEvent }),
  add_to_sequences: Type.Array(KitRef, { maxItems: LIMITS.listsPerEvent }),
  unsubscribe: Type.Boolean(),
}

/** A rule: when every condition holds, its actions apply too (see server/core/rules.ts). */
export const Rule = Type.Object({ conditions: Conditions, ...ruleActions }, { additionalProperties: false })
export type Rule = Static<typeof Rule>

export const EventMapping = Type.Object(
  {
    add_tags: Type.Array(TagRef, { maxItems: LIMITS.tagsPerList }),
    remove_tags: Type.Array(TagRef, { maxItems: LIMITS.tagsPerList }),
    add_to_forms: Type.Array(KitRef, { maxItems: LIMITS.listsPerEvent }),
    add_to_sequences: Type.Array(KitRef, { maxItems: LIMITS.listsPerEvent }),
    unsubscribe: Type.Boolean(),
    /**
     * `user.deleted` only: erase the person from Kit as far as its API allows (unsubscribe, every
     * mapped field emptied, every mapped tag removed); they are then listed for deletion by hand.
     */
    erase: Type.Optional(Type.Boolean()),
    /** Conditional rules, in order, applied after the actions above (absent: none). */
    rules: Type.Optional(Type.Array(Rule, { maxItems: LIMITS.rulesPerEvent })),
  },
  { additionalProperties: false },
)
export type EventMapping = Static<typeof EventMapping>

/**
 * Who becomes a Kit subscriber: every member (the default), or only members who agreed to
 * marketing email (`data.member.consent.marketing === true`). Either way, a member who withdraws
 * consent is unsubscribed in Kit.
 */
export const ConsentMode = Type.Union([Type.Literal('all_members'), Type.Literal('marketing_consent')])
export type ConsentMode = Static<typeof ConsentMode>
export const DEFAULT_CONSENT_MODE: ConsentMode = 'all_members'
export const CONSENT_MODES: readonly ConsentMode[] = ['all_members', 'marketing_consent']
export const isConsentMode = (value: unknown): value is ConsentMode => (CONSENT_MODES as readonly unknown[]).includes(value)

/** The community's consent setting (`GET /consent`); `updated_at` is null until the owner saves one. */
export const ConsentSetting = Type.Object({
  mode: ConsentMode,
  updated_at: Type.Union([Type.String(), Type.Null()]),
})
export type ConsentSetting = Static<typeof ConsentSetting>

export const PutConsentBody = Type.Object({ mode: ConsentMode }, { additionalProperties: false })
export type PutConsentBody = Static<typeof PutConsentBody>

export const FieldMapping = Type.Object(
  {
    source: Type.String({ pattern: '^mk_[a-z0-9_]{1,60}$' }),
    kit_field: Type.Object(
      {
        key: Type.String({ minLength: 1, maxLength: 255 }),
        label: Type.String({ minLength: 1, maxLength: 255 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)
export type FieldMapping = Static<typeof FieldMapping>

const MappingEvents = Type.Object(
  Object.fromEntries(EVENT_TYPES.map((t) => [t, Type.Optional(EventMapping)])) as Record<
    (typeof EVENT_TYPES)[number],
    ReturnType<typeof Type.Optional<typeof EventMapping>>
  >,
  { additionalProperties: false },
)
const FieldMappings = Type.Array(FieldMapping, { maxItems: LIMITS.fieldMappingsMax })

/** The whole mappings document. `PUT /mappings` requires every event type in `events`. */
export const Mappings = Type.Object(
  {
    events: MappingEvents,
    fields: FieldMappings,
    /** "Only these members reach Kit": every condition must hold for an event to be sent (absent or empty: everyone). */
    filter: Type.Optional(Conditions),
  },
  { additionalProperties: false },
)
export type Mappings = Static<typeof Mappings>

/**
 * A change to the mappings (`PATCH /mappings`): each event type given replaces that event's
 * mapping, `fields` (when given) replaces the field list; everything left out stays as saved.
 */
export const MappingsPatch = Type.Object(
  { events: Type.Optional(MappingEvents), fields: Type.Optional(FieldMappings), filter: Type.Optional(Conditions) },
  { additionalProperties: false },
)
export type MappingsPatch = Static<typeof MappingsPatch>

/** `POST /mappings/preview`: the draft to compare with what is saved. */
export const MappingPreviewBody = Type.Object({ draft: Mappings }, { additionalProperties: false })
export type MappingPreviewBody = Static<typeof MappingPreviewBody>

/**
 * One tag, form or sequence the draft would give to members who would not get it now (`gain`), or
 * keep from members who get it now (`lose`), counted in distinct members (see
 * server/pipeline/mapping-preview.ts for the exact definition).
 */
export const MappingPreviewChange = Type.Object({
  kind: Type.Union([Type.Literal('tag'), Type.Literal('form'), Type.Literal('sequence')]),
  name: Type.String(),
  gain: Type.Integer({ minimum: 0 }),
  lose: Type.Integer({ minimum: 0 }),
})
export type MappingPreviewChange = Static<typeof MappingPreviewChange>

/** What the draft would do with one event type's recent events, compared with the saved document. */
export const MappingPreviewEvent = Type.Object({
  type: Type.Enum([...EVENT_TYPES]),
  /** The events planned: the type's newest held ones, at most PREVIEW_EVENTS_PER_TYPE. */
  considered: Type.Integer({ minimum: 1 }),
  /** The time of the oldest of them. */
  since: Type.String({ format: 'date-time' }),
  /** Each of the draft's rules for this type, by index: the events it would apply to (its conditions hold and the member passes the filter). */
  rules: Type.Array(Type.Object({ index: Type.Integer({ minimum: 0 }), matched: Type.Integer({ minimum: 0 }) })),
  /** Events the member filter leaves out: with the saved document, and with the draft. */
  left_out_by_filter: Type.Object({ saved: Type.Integer({ minimum: 0 }), draft: Type.Integer({ minimum: 0 }) }),
  /** Most members first. */
  changes: Type.Array(MappingPreviewChange),
  /** Events sent to Kit with the saved document that the draft would skip, and the other way round. */
  newly_skipped: Type.Integer({ minimum: 0 }),
  newly_sent: Type.Integer({ minimum: 0 }),
})
export type MappingPreviewEvent = Static<typeof MappingPreviewEvent>

export const MappingPreview = Type.Object({
  /** One entry per event type with events held, in the order of EVENT_TYPES. */
  events: Type.Array(MappingPreviewEvent),
  /** The time of the oldest event counted (null: none is held). */
  held_since: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  /** Events are planned one by one, as if none had been applied before: which of two events of a member is newer is not weighed. */
  ordering_simulated: Type.Literal(false),
})
export type MappingPreview = Static<typeof MappingPreview>

export const MappingCheck = Type.Object({
  kind: Type.Union([Type.Literal('tag'), Type.Literal('form'), Type.Literal('sequence'), Type.Literal('custom_field')]),
  name: Type.String(),
  id: Type.Union([Type.Integer(), Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('ok'), Type.Literal('missing'), Type.Literal('created_on_first_use')]),
  used_by: Type.Array(Type.String()),
  message: Type.String(),
})
export type MappingCheck = Static<typeof MappingCheck>

export const ConnectionTestResult = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    account: KitAccount,
    latency_ms: Type.Integer(),
    checks: Type.Array(MappingCheck),
  }),
  Type.Object({
    ok: Type.Literal(false),
    error: Type.Object({ code: Type.String(), message: Type.String() }),
  }),
])
export type ConnectionTestResult = Static<typeof ConnectionTestResult>

export const KitTag = Type.Object({ id: Type.Integer(), name: Type.String() })
export type KitTag = Static<typeof KitTag>
export const KitCustomField = Type.Object({
  id: Type.Integer(),
  key: Type.String(),
  label: Type.String(),
})
export type KitCustomField = Static<typeof KitCustomField>
export const KitForm = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  type: Type.Union([Type.String(), Type.Null()]),
  archived: Type.Boolean(),
})
export type KitForm = Static<typeof KitForm>
export const KitSequence = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  /** false when Kit holds the sequence inactive (adding members to it is refused); absent when not known. */
  active: Type.Optional(Type.Boolean()),
})
export type KitSequence = Static<typeof KitSequence>

export const CreateTagBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: LIMITS.tagNameMax }) },
  { additionalProperties: false },
)

export const DeliveryStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('succeeded'),
  Type.Literal('retrying'),
  Type.Literal('failed'),
  Type.Literal('skipped'),
])
export type DeliveryStatus = Static<typeof DeliveryStatus>

/**
 * One thing a delivery did (or deliberately did not do) in Kit, in the order it happened, so the
 * owner can read what happened to a member: `target` names the Kit object (tag, form, sequence,
 * field label), `detail` says why in words (a skip's reason, a warning's text).
 */
export const DeliveryStepAction = Type.Union([
  Type.Literal('subscriber.created'),
  Type.Literal('subscriber.updated'),
  Type.Literal('subscriber.unchanged'),
  /** The person is unconfirmed (inactive) in Kit and this delivery could not add them to a form to confirm. */
  Type.Literal('subscriber.unconfirmed'),
  Type.Literal('fields.written'),
  Type.Literal('tag.added'),
  Type.Literal('tag.removed'),
  Type.Literal('form.added'),
  Type.Literal('sequence.added'),
  Type.Literal('unsubscribed'),
  Type.Literal('skipped'),
  Type.Literal('warning'),
  Type.Literal('failed'),
])
export type DeliveryStepAction = Static<typeof DeliveryStepAction>

export const DeliveryStep = Type.Object({
  action: DeliveryStepAction,
  target: Type.Union([Type.String(), Type.Null()]),
  detail: Type.Union([Type.String(), Type.Null()]),
})
export type DeliveryStep = Static<typeof DeliveryStep>

export const Delivery = Type.Object({
  id: Type.String(),
  event_id: Type.String(),
  event_type: Type.String(),
  member_email: Type.String(),
  status: DeliveryStatus,
  attempts: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()]),
  /** Why it was skipped, is waiting or is held, as a code (e.g. `not_connected`, `list_lag`); `last_error` says it in words. */
  reason: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  kit_requests: Type.Integer(),
  /** What the last attempt did, step by step; empty until an attempt ran. */
  steps: Type.Array(DeliveryStep),
  /** For `retrying` (and held) deliveries: when the next attempt is due. */
  next_attempt_at: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
})
export type Delivery = Static<typeof Delivery>

/** `newest` first (the default) or `oldest` first, e.g. to read what happened to one member in order. */
export const DeliveryOrder = Type.Union([Type.Literal('newest'), Type.Literal('oldest')], {
  description: 'newest (default): latest first; oldest: in the order the events arrived',
})
export type DeliveryOrder = Static<typeof DeliveryOrder>

/** Kit's state of a subscriber: `inactive` is unconfirmed, `cancelled` unsubscribed. */
export const KitSubscriberState = Type.Union([
  Type.Literal('active'),
  Type.Literal('inactive'),
  Type.Literal('cancelled'),
  Type.Literal('bounced'),
  Type.Literal('complained'),
])
export type KitSubscriberState = Static<typeof KitSubscriberState>

/** What the plugin last saw of one member in Kit, under the community's current connection. */
export const MemberKit = Type.Object(
  {
    state: Type.Union([KitSubscriberState, Type.Null()], { description: 'null: not seen in Kit yet' }),
    learned_at: Type.Union([Type.String(), Type.Null()], { description: 'When the plugin learnt this state' }),
    subscriber_id: Type.Union([Type.Integer(), Type.Null()], { description: "The member's Kit subscriber, when the plugin knows it" }),
  },
  { additionalProperties: false },
)
export type MemberKit = Static<typeof MemberKit>

export const DeliveryPage = Type.Object({
  items: Type.Array(Delivery),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
  /** With `member` naming one member's whole email, on a page holding their deliveries: what Kit holds of them. */
  member_kit: Type.Optional(MemberKit),
})
export type DeliveryPage = Static<typeof DeliveryPage>

/**
 * Re-queue many deliveries at once: every failed one, or every one skipped for a given reason
 * (`not_connected`: recorded while no Kit account was connected).
 */
export const RetryDeliveriesBody = Type.Object(
  {
    status: Type.Union([Type.Literal('failed'), Type.Literal('skipped')]),
    reason: Type.Optional(Type.Literal('not_connected')),
  },
  { additionalProperties: false },
)
export type RetryDeliveriesBody = Static<typeof RetryDeliveriesBody>

export const RetryDeliveriesResult = Type.Object(
  {
    /** Deliveries put back in the queue by this call (at most RETRY_MANY_MAX). */
    queued: Type.Integer({ minimum: 0 }),
    /** Deliveries that match but were left for another call. */
    remaining: Type.Integer({ minimum: 0 }),
  },
  { description: 'Queued: the deliveries are sent again, oldest event first' },
)
export type RetryDeliveriesResult = Static<typeof RetryDeliveriesResult>

/**
 * What `POST /deliveries/retry` with `{"status":"skipped","reason":"not_connected"}` would send:
 * the deliveries recorded while no Kit account was connected, how many members they concern, and
 * how many of each event type.
 */
export const ReplayableDeliveries = Type.Object(
  {
    count: Type.Integer({ minimum: 0 }),
    members: Type.Integer({ minimum: 0 }),
    event_types: Type.Array(Type.Object({ event_type: Type.String(), count: Type.Integer({ minimum: 1 }) })),
  },
  { description: 'Deliveries recorded while no Kit account was connected; event types most frequent first' },
)
export type ReplayableDeliveries = Static<typeof ReplayableDeliveries>

/** The most deliveries one bulk retry puts back in the queue. */
export const RETRY_MANY_MAX = 10_000

// The member file's columns: kept apart from the schemas so the panel reads them without the schema library.
export { SYNC_COLUMNS, SYNC_FIELD_COLUMN, SYNC_MAX_COLUMNS } from './sync-columns.ts'

/**
 * Which member field each of a file's columns fills: column name (as the file spells it) → one of
 * SYNC_COLUMNS or an `mk_*` field, or null to ignore the column.
 */
export const SyncColumnMapping = Type.Record(Type.String({ maxLength: 200 }), Type.Union([Type.String(), Type.Null()]))
export type SyncColumnMapping = Static<typeof SyncColumnMapping>

/** One column of a member file and the member field it fills (null: ignored). */
export const SyncColumn = Type.Object({
  name: Type.String(),
  field: Type.Union([Type.String(), Type.Null()]),
})
export type SyncColumn = Static<typeof SyncColumn>

/**
 * A member file refused as a whole (400). For the codes about columns (`missing_column`,
 * `invalid_column_mapping`) `columns` lists the file's columns with the mapping that was used, so
 * the owner can map them and try again.
 */
export const SyncFileError = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    columns: Type.Optional(Type.Array(SyncColumn)),
  }),
})
export type SyncFileError = Static<typeof SyncFileError>

export const SyncStatus = Type.Union([
  Type.Literal('importing'),
  Type.Literal('running'),
  Type.Literal('paused'),
  Type.Literal('completed'),
  Type.Literal('cancelled'),
])
export type SyncStatus = Static<typeof SyncStatus>

/** A row of the member file that was not taken, and why. */
export const SyncRefusedRow = Type.Object({
  line: Type.Integer(),
  email: Type.Union([Type.String(), Type.Null()]),
  member_id: Type.Union([Type.String(), Type.Null()]),
  reason: Type.String(),
})
export type SyncRefusedRow = Static<typeof SyncRefusedRow>

export const Sync = Type.Object({
  id: Type.String(),
  status: SyncStatus,
  format: Type.Union([Type.Literal('csv'), Type.Literal('jsonl')]),
  /** The snapshot's time: a live event newer than this wins over the sync. */
  started_at: Type.String(),
  /** Members taken from the file (each one a delivery). */
  total: Type.Integer(),
  /** Delivered to Kit (succeeded). */
  done: Type.Integer(),
  failed: Type.Integer(),
  /** Skipped: stale (a newer live event won), nothing to change, or the sync was cancelled. */
  skipped: Type.Integer(),
  /** Still to do (waiting, retrying, paused or held). */
  remaining: Type.Integer(),
  refused: Type.Integer(),
  /** The first refused rows (at most 20). */
  refused_rows: Type.Array(SyncRefusedRow),
  kit_requests: Type.Integer(),
  /** From the credential's Kit budget and the requests per member so far; null when not running. */
  estimated_seconds_left: Type.Union([Type.Integer(), Type.Null()]),
  finished_at: Type.Union([Type.String(), Type.Null()]),
})
export type Sync = Static<typeof Sync>

export const SyncList = Type.Object({ items: Type.Array(Sync) })
export type SyncList = Static<typeof SyncList>

/** How many members one change would touch, with up to 5 of their emails. */
export const SyncPlanCount = Type.Object({
  count: Type.Integer(),
  examples: Type.Array(Type.String()),
})
export type SyncPlanCount = Static<typeof SyncPlanCount>

export const SyncPlanChange = Type.Object({
  name: Type.String(),
  count: Type.Integer(),
  examples: Type.Array(Type.String()),
})
export type SyncPlanChange = Static<typeof SyncPlanChange>

/**
 * A dry run's answer: what the sync would do, from what the plugin last wrote to Kit for each
 * member (no Kit request is made). "create" counts members the plugin has never written: Kit
 * creates them, or matches an existing subscriber with that email.
 */
export const SyncPlan = Type.Object({
  dry_run: Type.Literal(true),
  format: Type.Union([Type.Literal('csv'), Type.Literal('jsonl')]),
  rows: Type.Integer(),
  accepted: Type.Integer(),
  subscribers: Type.Object({ create: SyncPlanCount, update: SyncPlanCount, unchanged: SyncPlanCount }),
  tags_added: Type.Array(SyncPlanChange),
  tags_removed: Type.Array(SyncPlanChange),
  forms_added: Type.Array(SyncPlanChange),
  sequences_added: Type.Array(SyncPlanChange),
  unsubscribed: SyncPlanCount,
  /**
   * Members the sync would leave out because the community takes only members who agreed to
   * marketing email and these have not (their consent is empty or false), nor are they in Kit yet.
   */
  left_out_no_consent: SyncPlanCount,
  refused: Type.Integer(),
  /** The first refused rows (at most 100). */
  refused_rows: Type.Array(SyncRefusedRow),
  /**
   * The file's columns (the CSV header, or JSON Lines keys in order of first appearance) and the
   * member field each fills: the mapping sent, else the one remembered from the community's last
   * import, else same-named columns. A column with no field is ignored; the import judges the file
   * with the same mapping.
   */
  columns: Type.Array(SyncColumn),
  /** Kit requests the sync is expected to make, and the time the credential's budget needs for them. */
  estimated_kit_requests: Type.Integer(),
  estimated_seconds: Type.Integer(),
})
export type SyncPlan = Static<typeof SyncPlan>

/**
 * A member erased from Kit as far as its API allows (unsubscribed, mapped fields emptied, mapped
 * tags removed) whom the owner still has to delete by hand in Kit's app: Kit's v4 API cannot
 * delete a subscriber. No email or name is kept for them: the member id and Kit's subscriber id.
 */
export const Erasure = Type.Object({
  member_id: Type.String({ description: 'The App Station member id' }),
  subscriber_id: Type.Integer({ description: "Kit's subscriber id" }),
  kit_url: Type.String({ description: "The subscriber's page in Kit's app, where they are deleted" }),
  erased_at: Type.String({ format: 'date-time' }),
})
export type Erasure = Static<typeof Erasure>

/** The erasures still to do, newest first (at most ERASURES_MAX). */
export const ErasureList = Type.Object({ items: Type.Array(Erasure) })
export type ErasureList = Static<typeof ErasureList>

/** The most erasures one list shows. */
export const ERASURES_MAX = 500
/** One saved version of the mappings: who saved it, when, and the change in words. */
export const MappingVersion = Type.Object({
  version: Type.Integer({ minimum: 0, description: 'From 0, increasing per community' }),
  saved_by: Type.Union([Type.String(), Type.Null()], {
    description:
      'The App Station user who saved it (the session token’s `sub`); null for version 0, what was in place before the first save',
  }),
  saved_at: Type.String(),
  change: Type.String({ description: 'What this save changed, in words (`added tag "VIP" to Member signs up`), or `no change`' }),
  restored_from: Type.Union([Type.Integer(), Type.Null()], { description: 'The version this save restored, when it was a restore' }),
})
export type MappingVersion = Static<typeof MappingVersion>

export const MappingHistoryPage = Type.Object({
  items: Type.Array(MappingVersion),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
})
export type MappingHistoryPage = Static<typeof MappingHistoryPage>
