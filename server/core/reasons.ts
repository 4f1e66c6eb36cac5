/**
 * Why a delivery was skipped, is waiting or is held, as a code stored in its own column and
 * compared as a code; the words people read in Activity (`last_error`) come from the one table
 * below, filled in with what the particular delivery names.
 */

export const REASON_CODES = [
  // skipped: nothing was sent, or nothing was left to send
  'not_connected',
  'unknown_event_type',
  'event_not_handled',
  'empty_mapping',
  'stale_event',
  'stale_snapshot',
  'stale_profile',
  'not_in_kit',
  'no_consent',
  'filtered_out',
  'member_deleted',
  // waiting (retrying, or pending when given back): tried again later
  'list_lag',
  'kit_budget',
  'turn_over',
  'kit_rate_limited',
  'kit_unavailable',
  'kit_timeout',
  'kit_bulk_busy',
  'subscriber_gone',
  'attempt_stopped',
  'unexpected_error',
  // held: waits for the owner to save a working key, or for its sync
  'key_rejected',
  'key_unreadable',
  'sync_importing',
  'sync_paused',
  // skipped by the owner
  'sync_cancelled',
  // succeeded with a warning: Kit holds the person as not wanting mail (forms and sequences left out)
  'kit_unsubscribed',
  'kit_bounced',
  'kit_complained',
  'resubscribe_needs_form',
  'resubscribe_confirming',
  // failed for good (the words name what Kit refused; these codes are what the platform is told)
  'kit_refused',
  'kit_not_found',
  'mapping_refused',
  'retries_exhausted',
  'kit_plan_limit',
] as const

export type ReasonCode = (typeof REASON_CODES)[number]

/** What a reason's words name, when they name something. */
export interface ReasonDetails {
  /** The event type, the newer event's id, the ordering scope's words, an email address, a message. */
  eventType?: string
  eventId?: string
  scope?: string
  email?: string
  window?: string
  message?: string
  until?: string
  budget?: string
}

/** Ends a text as a sentence (Kit's own messages sometimes carry their full stop). */
const sentence = (text: string) => (/[.!?]$/.test(text) ? text : `${text}.`)

const REASON_WORDS: Record<ReasonCode, (d: ReasonDetails) => string> = {
  not_connected: () => 'No Kit account is connected for this community, so nothing was sent to Kit.',
  unknown_event_type: (d) => `Event type ${d.eventType ?? ''} is not handled by the Kit integration.`,
  event_not_handled: (d) => `Event type ${d.eventType ?? ''} is not handled.`,
  empty_mapping: (d) => `Nothing is mapped for ${d.eventType ?? ''}.`,
  stale_event: (d) => `Stale: a newer event (${d.eventId ?? ''}) for ${d.scope ?? ''} was already applied, so this older one was not.`,
  stale_snapshot: (d) =>
    `Stale: a newer event (${d.eventId ?? ''}) for this member was applied after the sync started, so this snapshot changed nothing.`,
  stale_profile: (d) => `Stale: a newer event (${d.eventId ?? ''}) already set this member's profile, so this older one changed nothing.`,
  not_in_kit: (d) =>
    `${d.email ?? ''} is not a Kit subscriber (looked up for ${d.window ?? ''} after the event arrived), so there was nothing to change.`,
  no_consent: () =>
    'Skipped: this community sends only members who agreed to marketing email to Kit, and this member has not, so nothing was sent to Kit.',
  filtered_out: () =>
    'Left out by the member filter ("Only these members reach Kit"), so nothing was sent to Kit; what Kit already holds for this person is left as it is.',
  member_deleted: () =>
    'This member was deleted in App Station, so nothing from before the deletion is sent to Kit, and their personal data is no longer kept here.',
  list_lag: (d) =>
    `Waiting for Kit's subscriber list: ${d.email ?? ''} is not in it yet. Kit lists new subscribers only after a delay, ` +
    `so this is looked up again until ${d.window ?? ''} after the event arrived.`,
  kit_budget: (d) => `Waiting for Kit's rate limit (${d.budget ?? ''}); continues at ${d.until ?? ''}.`,
  turn_over: () => 'Paused to let other deliveries run; continues shortly.',
  kit_rate_limited: () => 'Kit asked us to slow down (rate limit); waiting for its window before retrying.',
  kit_unavailable: (d) => `Kit was unavailable (${d.message ?? ''}); retrying with backoff.`,
  kit_timeout: () => 'Kit took too long to answer; this delivery will be retried.',
  kit_bulk_busy: () =>
    'Kit is still working through earlier bulk requests for this Kit account; this member will be sent again in a minute.',
  kit_plan_limit: (d) =>
    `Kit refused to add more subscribers: the Kit plan's subscriber limit would be passed${d.message ? ` (Kit said "${d.message}")` : ''}. Upgrade the plan in Kit, then retry these members in Activity.`,
  subscriber_gone: () => 'Kit no longer had the subscriber we knew of; retrying with a fresh lookup.',
  attempt_stopped: () => 'This attempt was stopped before Kit answered; it will be retried.',
  unexpected_error: () => 'An unexpected error interrupted this delivery; it will be retried.',
  key_rejected: () =>
    'Waiting: Kit no longer accepts the saved API key or connection. Connect Kit again under Connection and this delivery resumes.',
  key_unreadable: () =>
    "Waiting: the saved Kit key can no longer be read (the server's encryption key changed). Paste the key again under Connection and this delivery resumes.",
  sync_importing: () => 'Waiting: the sync is still reading its member file.',
  sync_paused: () => 'Paused: the initial sync was paused. Resume it under Bring existing members and this delivery continues.',
  sync_cancelled: () => 'Sync cancelled: the initial sync was cancelled before this member was sent to Kit.',
  kit_unsubscribed: () =>
    'Kit has this person as unsubscribed — forms and sequences skipped, tags and fields written. They subscribe again only by giving fresh consent in App Station.',
  kit_bounced: () => "Kit has this person's address as bounced — forms and sequences skipped, tags and fields written.",
  kit_complained: () => 'Kit has this person as having marked an email as spam — forms and sequences skipped, tags and fields written.',
  resubscribe_needs_form: () =>
    'This person gave fresh consent, but Kit has them as unsubscribed and only a form can subscribe them again: map an opt-in form to let members subscribe again. Tags and fields were written.',
  resubscribe_confirming: () =>
    'Kit had this person as unsubscribed; they gave fresh consent, so they were added to the mapped form and Kit asks them to confirm. Sequences wait until Kit has them active again.',
  kit_refused: (d) => sentence(`Kit refused the change: ${d.message ?? ''}`),
  kit_not_found: (d) => sentence(`Kit could not find what this event refers to: ${d.message ?? ''}`),
  mapping_refused: (d) => sentence(`Kit refused what the mapping names${d.message ? `: ${d.message}` : ''}; fix the mapping, then Retry`),
  // Leads with the verdict: the last try's words (`message`) still speak of retrying.
  retries_exhausted: (d) => `Gave up after retrying for a day. The last try: ${d.message ?? ''} Use Retry once Kit works again.`,
}

/** Codes a succeeded delivery carries when Kit's state for the person left forms or sequences out. */
export const KIT_STATE_WARNINGS = [
  'kit_unsubscribed',
  'kit_bounced',
  'kit_complained',
  'resubscribe_needs_form',
  'resubscribe_confirming',
] as const satisfies readonly ReasonCode[]
export type KitStateWarning = (typeof KIT_STATE_WARNINGS)[number]

/** The words Activity shows for a reason. */
export function reasonWords(code: ReasonCode, details: ReasonDetails = {}): string {
  return REASON_WORDS[code](details)
}

export const isReasonCode = (value: unknown): value is ReasonCode =>
  typeof value === 'string' && (REASON_CODES as readonly string[]).includes(value)
