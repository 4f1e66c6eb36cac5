/**
 * How Activity names Kit's side of a member: the badge a delivery carries beside its status, by
 * its reason code, and Kit's state codes in words. The codes decide; `last_error` keeps the sentence.
 */
import type { Delivery, KitSubscriberState } from '#shared/api.ts'

export interface ReasonBadge {
  label: string
  tone: 'warning' | 'neutral'
}

/** Reason codes worth a badge: delivered while Kit holds the person as not wanting mail, or skipped without consent. */
export const REASON_BADGES: Readonly<Record<string, ReasonBadge>> = {
  kit_unsubscribed: { label: 'Unsubscribed in Kit', tone: 'warning' },
  kit_bounced: { label: 'Bounced in Kit', tone: 'warning' },
  kit_complained: { label: 'Spam complaint in Kit', tone: 'warning' },
  resubscribe_needs_form: { label: 'Needs an opt-in form', tone: 'warning' },
  resubscribe_confirming: { label: 'Asked to confirm', tone: 'warning' },
  no_consent: { label: 'No consent', tone: 'neutral' },
}

export function reasonBadge({ reason }: Pick<Delivery, 'reason'>): ReasonBadge | null {
  return reason && Object.hasOwn(REASON_BADGES, reason) ? REASON_BADGES[reason]! : null
}

/** Kit's state of a subscriber as the owner reads it after "In Kit:". */
export const KIT_STATE_WORDS: Record<KitSubscriberState, string> = {
  active: 'subscribed',
  inactive: 'unconfirmed',
  cancelled: 'unsubscribed',
  bounced: 'bounced',
  complained: 'marked an email as spam',
}

/** States in which Kit sends the person no mail. */
export const KIT_STATE_QUIET: readonly KitSubscriberState[] = ['cancelled', 'bounced', 'complained']
