/**
 * One error type for everything Kit can answer, so callers branch on a small set of kinds instead
 * of on HTTP details. Messages are human-readable and never carry the API key.
 */
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

function defaultMessage(kind: KitErrorKind, status: number | null): string {
  if (status !== null) return `Kit answered ${status} without details`
  return kind === 'unavailable' ? 'Kit could not be reached' : `Kit request failed (${kind})`
}
