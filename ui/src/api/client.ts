/**
 * The one HTTP client of the panel: `/api/v1`, the session token as a bearer header (never in the
 * URL), one retry with a fresh token after a 401, and every failure turned into an `ApiError`
 * carrying the server's `{ code, message }`.
 */
import { FetchError, ofetch } from 'ofetch'
import type { ErrorBody } from '#shared/api.ts'
import { useSessionStore } from '../stores/session.ts'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Whole seconds from a `Retry-After` header (429, 503), when the server sent one. */
    readonly retryAfterS: number | null = null,
    /** The rest of the answer's `error` object, for errors that carry more (a member file's `columns`). */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export type Query = Record<string, string | number | null | undefined>

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** A plain object is sent as JSON; a Blob (a chosen file) as it is, with `contentType`. */
  body?: Record<string, unknown> | object | Blob
  contentType?: string
  query?: Query
}

const http = ofetch.create({ baseURL: '/api/v1', retry: 0, headers: { Accept: 'application/json' } })

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null) return false
  const error = (value as { error?: unknown }).error
  if (typeof error !== 'object' || error === null) return false
  const { code, message } = error as Record<string, unknown>
  return typeof code === 'string' && typeof message === 'string'
}

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  if (error instanceof FetchError) {
    const status = error.status ?? 0
    const retryAfter = Number(error.response?.headers.get('retry-after') ?? Number.NaN)
    const retryAfterS = Number.isFinite(retryAfter) && retryAfter >= 0 ? Math.ceil(retryAfter) : null
    if (isErrorBody(error.data)) {
      const { code, message, ...details } = error.data.error as ErrorBody['error'] & Record<string, unknown>
      return new ApiError(status, code, message, retryAfterS, details)
    }
    if (status === 0) {
      return new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.')
    }
    return new ApiError(status, `http_${status}`, `The server answered ${status}${error.statusText ? ` ${error.statusText}` : ''}.`)
  }
  return new ApiError(0, 'unexpected', error instanceof Error ? error.message : 'Something unexpected went wrong.')
}

function cleanQuery(query: Query | undefined): Record<string, string> | undefined {
  if (!query) return undefined
  const entries = Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')
  return Object.fromEntries(entries.map(([k, v]) => [k, String(v)]))
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const session = useSessionStore()
  const send = (token: string | null) =>
    http<T>(path, {
      method: options.method ?? 'GET',
      body: options.body,
      query: cleanQuery(options.query),
      headers: {
        ...(options.contentType ? { 'Content-Type': options.contentType } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
    })

  let failure: ApiError
  try {
    return await send(session.currentToken())
  } catch (error) {
    failure = toApiError(error)
  }
  if (failure.status === 401) {
    const fresh = await session.refreshToken()
    if (fresh) {
      try {
        return await send(fresh)
      } catch (error) {
        failure = toApiError(error)
      }
    }
  }
  if (failure.status === 403 && failure.code === 'forbidden') session.markForbidden()
  throw failure
}
