/**
 * The one HTTP client of the panel: `/api/v1`, the session token as a bearer header (never in the
 * URL), one retry with a fresh token after a 401, and every failure turned into an `ApiError`
 * carrying the server's `{ code, message }`. The browser's own `fetch`, with nothing around it: the
 * panel needs no more, and a fetch library would weigh on its first screen.
 */
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

const BASE = '/api/v1'
const JSON_TYPE = /^application\/(?:[\w!#$%&*.^`~-]*\+)?json(?:;.*)?$/i

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null) return false
  const error = (value as { error?: unknown }).error
  if (typeof error !== 'object' || error === null) return false
  const { code, message } = error as Record<string, unknown>
  return typeof code === 'string' && typeof message === 'string'
}

/** The server's refusal as an ApiError: its `{ code, message }` when it sent one, its status otherwise. */
function refusalOf(response: Response, data: unknown): ApiError {
  const { status, statusText } = response
  const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN)
  const retryAfterS = Number.isFinite(retryAfter) && retryAfter >= 0 ? Math.ceil(retryAfter) : null
  if (isErrorBody(data)) {
    const { code, message, ...details } = data.error as ErrorBody['error'] & Record<string, unknown>
    return new ApiError(status, code, message, retryAfterS, details)
  }
  return new ApiError(status, `http_${status}`, `The server answered ${status}${statusText ? ` ${statusText}` : ''}.`)
}

/** Whatever a call threw, as an ApiError (the calls below throw nothing else). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  return new ApiError(0, 'unexpected', error instanceof Error ? error.message : 'Something unexpected went wrong.')
}

/** `/api/v1` + path, with the query's non-empty values. */
function urlOf(path: string, query: Query | undefined): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') params.append(k, String(v))
  const search = params.toString()
  return `${BASE}${path}${search ? `?${search}` : ''}`
}

/** The answer's body: parsed when it says JSON, its text otherwise, nothing for an empty one. */
async function bodyOf(response: Response): Promise<unknown> {
  const text = await response.text()
  if (!text) return undefined
  if (!JSON_TYPE.test(response.headers.get('content-type') ?? '')) return text
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** A plain object or array goes as JSON; anything else (a Blob) as it is. */
const isJson = (body: unknown): boolean =>
  Array.isArray(body) || (typeof body === 'object' && body !== null && Object.getPrototypeOf(body) === Object.prototype)

async function send<T>(path: string, options: RequestOptions, token: string | null): Promise<T> {
  const json = isJson(options.body)
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (json) headers['Content-Type'] = 'application/json'
  if (options.contentType) headers['Content-Type'] = options.contentType
  if (token) headers.Authorization = `Bearer ${token}`
  let response: Response
  let data: unknown
  try {
    response = await fetch(urlOf(path, options.query), {
      method: options.method ?? 'GET',
      headers,
      body: json ? JSON.stringify(options.body) : (options.body as Blob | undefined),
    })
    data = await bodyOf(response)
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.')
  }
  if (!response.ok) throw refusalOf(response, data)
  return data as T
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const session = useSessionStore()
  let failure: ApiError
  try {
    return await send<T>(path, options, session.currentToken())
  } catch (error) {
    failure = toApiError(error)
  }
  if (failure.status === 401) {
    const fresh = await session.refreshToken()
    if (fresh) {
      try {
        return await send<T>(path, options, fresh)
      } catch (error) {
        failure = toApiError(error)
      }
    }
  }
  if (failure.status === 403 && failure.code === 'forbidden') session.markForbidden()
  throw failure
}
