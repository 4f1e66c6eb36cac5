import { Type } from 'typebox'
import { ErrorBody } from '../../../shared/api.ts'

/** Error answers every session-protected route may give, for the OpenAPI description. */
export const sessionErrors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
  502: ErrorBody,
  503: ErrorBody,
}

export const security = [{ session: [] }]

export const NoContent = Type.Null({ description: 'No content' })
