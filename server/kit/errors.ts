/**
 * One error type for everything Kit can answer, so callers branch on a small set of kinds instead
 * of on HTTP details. Messages are human-readable and never carry the API key.
 */
import type { KitSubscriber } from '../core/kit.ts'

export type KitErrorKind = 'invalid_credentials' | 'rate_limited' | 'validation' | 'not_found' | 'unavailable'

export class KitError extends Error {
  override readonly name = 'KitError'
  readonly kind: KitErrorKind
  /** HTTP status Kit answered with; null when no answer arrived (network error, timeout). */
  readonly status: number | null
  readonly messages: string[]

  constructor(kind: KitErrorKind, status: number | null, messages: string[]) {
    const list = messages.length > 0 ? messages : [defaultMessage(kind, status)]
    super(list.join('; '))
    this.kind = kind
    this.status = status
    this.messages = list
  }
}

export function isKitError(e: unknown): e is KitError {
  return e instanceof KitError
}

export function kindForStatus(status: number): KitErrorKind {
  if (status === 401) return 'invalid_credentials'
  if (status === 429) return 'rate_limited'
  if (status === 404) return 'not_found'
  if (status >= 500) return 'unavailable'
  return 'validation'
}

/**
 * Why `signal` aborted, as an Error: its reason itself when that is one (callers may compare it, as
 * `AbortController.abort(error)` gives), a string reason as the message, anything else as the cause.
 */
export function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason
  if (reason instanceof Error) return reason
  return typeof reason === 'string' ? new Error(reason) : new Error('aborted', { cause: reason })
}

function defaultMessage(kind: KitErrorKind, status: number | null): string {
  if (status !== null) return `Kit answered ${status} without details`
  return kind === 'unavailable' ? 'Kit could not be reached' : `Kit request failed (${kind})`
}

/**
 * Kit wrote the subscriber but answered with `warnings` about some custom fields (unknown keys):
 * those fields were not written. Carries the subscriber Kit answered with, so a caller can tell
 * what was applied.
 */
export class KitFieldWarnings extends KitError {
  readonly subscriber: KitSubscriber
  /** The answer's status: 201 created, 200 existing, 202 accepted for later. */
  readonly answerStatus: number

  constructor(status: number, warnings: string[], subscriber: KitSubscriber) {
    super('validation', status, warnings)
    this.subscriber = subscriber
    this.answerStatus = status
  }
}
