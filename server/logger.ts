import type { FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'

/** Everything that may carry a secret is censored before a log line is written. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["webhook-signature"]',
  'req.headers["x-kit-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-kit-api-key"]',
  'headers["webhook-signature"]',
  'api_key',
  'apiKey',
  'token',
  'secret',
  '*.api_key',
  '*.apiKey',
  '*.token',
  '*.secret',
  'body.api_key',
  'payload.token',
]

export function loggerOptions(level: string, stream?: DestinationStream): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(stream ? { stream } : {}),
  }
}
