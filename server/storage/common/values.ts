/**
 * Values every storage module shares.
 *
 * Time inside storage: epoch milliseconds (numbers) in and out, for every `now`, due time and
 * event time. The few columns the schema keeps as ISO-8601 text (`created_at` / `updated_at` of
 * deliveries, connections and mappings) are written through `iso()` and read as they are stored;
 * nothing else in storage turns a time into text.
 */
import type { Outcome } from '../../core/queue.ts'

export { iso } from '../../core/time.ts'

export { newDeliveryId } from '../../core/ids.ts'

/** The keys of `values` that are set: a Partial may carry `undefined`, which means "leave as is". */
export function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** Whether settling with this outcome counts as an attempt: a skip that sent nothing to Kit is not one. */
export const attempted = (outcome: Outcome): 0 | 1 =>
  outcome.status !== 'pending' && (outcome.kitRequests > 0 || outcome.status !== 'skipped') ? 1 : 0
