/** An error a service throws on purpose: its code and message are safe to show to the caller. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Headers the answer carries, e.g. `retry-after`. */
    readonly headers: Readonly<Record<string, string>> = {},
    /** More of the answer's `error` object, for a route whose error schema names it (e.g. a file's `columns`). */
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message)
    this.name = 'AppError'
  }
}

/** Whole seconds for a `Retry-After` header: at least 1, never a fraction. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}
