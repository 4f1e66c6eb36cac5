import { Type, type TSchema } from 'typebox'
import { ErrorBody } from '#shared/api.ts'

/** A response schema carrying the words the OpenAPI description shows for that answer. */
export const answer = <T extends TSchema>(schema: T, description: string): T => ({ ...schema, description })

const error = (description: string) => answer(ErrorBody, description)

/** Error answers every session-protected route may give, for the OpenAPI description. */
export const sessionErrors = {
  400: error('invalid_request: a parameter or the body is invalid; the message names the part at fault'),
  401: error('invalid_session: the session token is missing, expired or not valid'),
  403: error('forbidden: only owners and admins of the community may use the settings API'),
  409: error('not_connected or connection_invalid: connect Kit (again) under Connection first'),
  429: error(
    'rate_limited: too many settings requests (or failed session tokens from this address); the Retry-After header says when to try again',
  ),
  502: error('kit_unreachable or kit_error: Kit could not be reached or refused the request'),
  503: error('kit_rate_limited or kit_busy: Kit asks us to slow down, or too many requests wait for it; see Retry-After'),
}

export const notFound = error('not_found: no such resource in this community')

export const security = [{ session: [] }]

export const NoContent = Type.Null({ description: 'No content' })
