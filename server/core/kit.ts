/**
 * The Kit port: Kit's shapes as the client returns them (only the properties the plugin relies
 * on) and the API one credential offers. server/kit implements it; the pipeline calls it.
 */
export interface KitAccountInfo {
  /** Kit requires only the email in its answer; the id may be absent. */
  user: { email: string; id: number | null }
  account: { id: number; name: string; plan_type: string | null; primary_email_address: string }
}

export interface KitSubscriber {
  id: number
  email_address: string
  first_name: string | null
  state: string
  created_at: string
  fields: Record<string, string | null>
}

export interface KitTagItem {
  id: number
  name: string
}

export interface KitCustomFieldItem {
  id: number
  key: string
  label: string
  name: string
}

export interface KitFormItem {
  id: number
  name: string
  type: string | null
  /** null for hosted landing pages, Creator Profile / Creator Network forms and legacy forms. */
  format: string | null
  archived: boolean
  /** A legacy form: joined through `/v4/landing_pages/{id}/subscribers/{subscriber_id}`. */
  legacy: boolean
}

export interface KitSequenceItem {
  id: number
  name: string
  /** Kit shows a sequence that is not active as on hold; adding to it answers 422. */
  hold: boolean
}

/** Custom field values by Kit field key. Kit takes strings only: a field is cleared with "". */
export type KitFieldValues = Record<string, string>

/** What Kit did with an upsert. */
export interface UpsertResult {
  subscriber: KitSubscriber
  /** Kit created the subscriber with this request (as far as its answer tells; false when unsure). */
  created: boolean
  /**
   * 202 (more than ten fields): Kit writes the fields of a subscriber it created after answering,
   * so the answer does not show them yet.
   */
  fieldsDeferred: boolean
}

export interface UpsertSubscriberInput {
  email: string
  firstName?: string | null
  state?: 'active' | 'inactive'
  fields?: KitFieldValues
}

export interface UpdateSubscriberInput {
  /** A new email address for the subscriber (trimmed and lower-cased). */
  email?: string
  firstName?: string | null
  fields?: KitFieldValues
}

export interface KitApi {
  readonly credentialId: string
  getAccount(): Promise<KitAccountInfo>
  listTags(): Promise<KitTagItem[]>
  createTag(name: string): Promise<{ tag: KitTagItem; created: boolean }>
  listCustomFields(): Promise<KitCustomFieldItem[]>
  createCustomField(label: string): Promise<{ field: KitCustomFieldItem; created: boolean }>
  /**
   * Forms as Kit's own libraries list them: `type=embed` (no hosted landing pages), Creator Profile
   * and Creator Network forms (a null format) left out; active ones unless asked otherwise.
   */
  listForms(status?: 'active' | 'archived' | 'all'): Promise<KitFormItem[]>
  /** Legacy forms (`GET /v4/landing_pages?type=embed`), joined through addSubscriberToLegacyForm. */
  listLegacyForms(): Promise<KitFormItem[]>
  listSequences(): Promise<KitSequenceItem[]>
  upsertSubscriber(input: UpsertSubscriberInput): Promise<UpsertResult>
  getSubscriber(id: number): Promise<KitSubscriber | null>
  findSubscriberByEmail(email: string): Promise<KitSubscriber | null>
  updateSubscriber(id: number, input: UpdateSubscriberInput): Promise<KitSubscriber>
  tagSubscriber(tagId: number, subscriberId: number): Promise<void>
  untagSubscriber(tagId: number, subscriberId: number): Promise<void>
  /** By subscriber id; `referrer` (a URL) is where Kit records the subscriber came from. */
  addSubscriberToForm(formId: number, subscriberId: number, referrer?: string | null): Promise<void>
  addSubscriberToLegacyForm(formId: number, subscriberId: number): Promise<void>
  addSubscriberToSequence(sequenceId: number, subscriberId: number): Promise<void>
  unsubscribe(subscriberId: number): Promise<void>
}

/** The most items one bulk request carries: Kit answers up to this many synchronously. */
export const BULK_BATCH = 100

/** One item Kit refused in a bulk request, with Kit's words; `item` null when Kit's answer names no single item sent. */
export interface BulkFailure<T> {
  item: T | null
  errors: string[]
}

export interface BulkSubscriberInput {
  email: string
  /** Sent only when given; Kit updates an existing subscriber's first name with it. */
  firstName?: string | null
  state?: 'active' | 'inactive'
}

export interface BulkTagging {
  tagId: number
  subscriberId: number
}

export interface BulkFieldValue {
  subscriberId: number
  /** Kit's numeric id of the custom field (not its key). */
  fieldId: number
  value: string
}

export interface BulkFormAddition {
  formId: number
  subscriberId: number
  referrer?: string | null
}

/** What a bulk creation did: the subscribers Kit found or created, and each item it refused. */
export interface BulkCreated {
  subscribers: KitSubscriber[]
  failures: BulkFailure<BulkSubscriberInput>[]
}

/**
 * Kit's bulk endpoints (OAuth connections only), at most BULK_BATCH items a call, answered
 * synchronously; each call but the creation answers the items Kit refused. Kit answers 413 while
 * too much bulk work is queued for the account and 403 when a creation would pass the plan's
 * subscriber limit: both thrown as KitError with that status.
 */
export interface KitBulkApi extends KitApi {
  bulkCreateSubscribers(items: BulkSubscriberInput[]): Promise<BulkCreated>
  bulkTag(items: BulkTagging[]): Promise<BulkFailure<BulkTagging>[]>
  bulkUntag(items: BulkTagging[]): Promise<BulkFailure<BulkTagging>[]>
  bulkSetFields(items: BulkFieldValue[]): Promise<BulkFailure<BulkFieldValue>[]>
  bulkAddToForms(items: BulkFormAddition[]): Promise<BulkFailure<BulkFormAddition>[]>
}
