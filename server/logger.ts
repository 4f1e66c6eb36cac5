import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The panel reads this route over and over while the owner watches (Activity, a sync's
     * progress): its request lines are logged at `debug`, so they do not fill the log at `info`.
     * Errors and 5xx answers keep their usual level.
     */
    polled?: boolean
    /** The route's query carries something secret (Kit's authorization code): its request line shows the path only. */
    secretQuery?: boolean
  }
}

const polled = (request: FastifyRequest) => request.routeOptions.config?.polled === true

/** Fastify's request lines, with the routes the panel polls at `debug` and secret queries left out. */
export class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (request.routeOptions.config?.secretQuery === true) {
      if (this.isLogDisabled(request)) return
      const url = `${request.url.split('?')[0]}${request.url.includes('?') ? '?[redacted]' : ''}`
      request.log.info({ req: { method: request.method, url, host: request.host, remoteAddress: request.ip } }, 'incoming request')
      return
    }
    if (!polled(request)) return super.incomingRequest(request, reply, metadata)
    if (this.isLogDisabled(request)) return
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
    metadata?: Record<string, unknown>,
  ): void {
    if (error || reply.statusCode >= 500 || !polled(request)) return super.requestCompleted(error, request, reply, metadata)
    if (this.isLogDisabled(request)) return
    reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

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
  'access_token',
  'refresh_token',
  'client_secret',
  'code_verifier',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  '*.code_verifier',
  'accessToken',
  'refreshToken',
  'clientSecret',
  '*.accessToken',
  '*.refreshToken',
  '*.clientSecret',
]

export function loggerOptions(level: string, stream?: DestinationStream): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(stream ? { stream } : {}),
  }
}
