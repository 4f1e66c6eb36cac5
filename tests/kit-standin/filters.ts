/**
 * The filters of `GET /v4/subscribers`: `status` and the four date filters. Kit documents the
 * dates as `yyyy-mm-dd` in the account's time zone; its own examples also send full timestamps.
 * Unsettled: how a timestamp and the day bounds are read. Modelled variant: only the date part
 * counts (a time is ignored, never converted), `*_after` keeps what happened after the start of
 * that day and `*_before` what happened before the start of that day, both in the account's time
 * zone. A poll therefore gets whole days back and has to compare with what it already knows.
 */
import { KitError } from './errors.ts'

export type SubscriberState = 'active' | 'inactive' | 'bounced' | 'complained' | 'cancelled'

export const SUBSCRIBER_STATES: readonly SubscriberState[] = ['active', 'inactive', 'bounced', 'complained', 'cancelled']

/** The stand-in account's time zone offset (its `timezone.utc_offset`). */
export const ACCOUNT_UTC_OFFSET = '-05:00'

export function statusFilter(query: URLSearchParams): (subscriber: { state: SubscriberState }) => boolean {
  const status = query.get('status') ?? 'active'
  if (status === 'all') return () => true
  if (!SUBSCRIBER_STATES.includes(status as SubscriberState)) throw new KitError(422, ['Status is invalid'])
  return (subscriber) => subscriber.state === status
}

const DATE_PATTERN = /^(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/

/** Start of the named day in the account's time zone, in ms; 422 when the value is no date. */
function dayStart(name: string, raw: string): number {
  const date = DATE_PATTERN.exec(raw.trim())?.[1]
  const ms = date === undefined ? Number.NaN : Date.parse(`${date}T00:00:00${ACCOUNT_UTC_OFFSET}`)
  if (Number.isNaN(ms) || new Date(ms + 12 * 3_600_000).toISOString().slice(0, 10) !== date) {
    throw new KitError(422, [`${name} is not a valid date`])
  }
  return ms
}

export interface Dated {
  createdMs: number
  updatedMs: number
}

/** `created_after`, `created_before`, `updated_after`, `updated_before`; null when none is given. */
export function dateFilter(query: URLSearchParams): ((times: Dated) => boolean) | null {
  const bounds: ((times: Dated) => boolean)[] = []
  const bound = (param: string, pick: (times: Dated) => number, after: boolean): void => {
    const raw = query.get(param)
    if (raw === null || raw === '') return
    const start = dayStart(param, raw)
    bounds.push(after ? (times) => pick(times) > start : (times) => pick(times) < start)
  }
  bound('created_after', (times) => times.createdMs, true)
  bound('created_before', (times) => times.createdMs, false)
  bound('updated_after', (times) => times.updatedMs, true)
  bound('updated_before', (times) => times.updatedMs, false)
  if (bounds.length === 0) return null
  return (times) => bounds.every((matches) => matches(times))
}
