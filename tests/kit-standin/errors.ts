/** What every part of the Kit stand-in answers with: Kit's error shape, a reply, Kit's timestamps. */

export type ErrorsBody = string | string[] | string[][]

/** An answer in Kit's error shape: `{"errors": ...}` with the given status. */
export class KitError extends Error {
  constructor(
    readonly status: number,
    readonly errors: ErrorsBody,
  ) {
    super(typeof errors === 'string' ? errors : errors.flat().join('; '))
  }
}

export interface Reply {
  status: number
  body?: unknown
}

export type JsonObject = Record<string, unknown>

export const notFound = (): KitError => new KitError(404, ['Not Found'])

/** Kit's timestamps have second precision: 2026-01-01T12:00:00Z. */
export function kitTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}
