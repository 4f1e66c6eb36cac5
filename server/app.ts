/**
 * Builds the plugin's Fastify app in a visible order: external plugins (config, database, metrics,
 * session auth, rate limits, upload pace, OpenAPI), then the app's services (Kit client, services, event pipeline, event bus), then the routes.
 * `main.ts` only loads config and listens; tests build this same app.
 */
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { DestinationStream } from 'pino'
import type { Config } from './config.ts'
import { loggerOptions, RequestLogController } from './logger.ts'
import authPlugin from './plugins/auth.ts'
import configPlugin from './plugins/config.ts'
import dbPlugin from './plugins/db.ts'
import devHostPlugin from './plugins/dev-host.ts'
import errorsPlugin from './plugins/errors.ts'
import eventBusPlugin, { type EventBusOptions } from './plugins/event-bus.ts'
import kitPlugin from './plugins/kit.ts'
import kitWatchPlugin from './plugins/kit-watch.ts'
import metricsPlugin from './plugins/metrics.ts'
import nulGuardPlugin from './plugins/nul-guard.ts'
import pipelinePlugin, { type PipelineOptions } from './plugins/pipeline.ts'
import platformEventsPlugin from './plugins/platform-events.ts'
import rateLimitPlugin from './plugins/rate-limit.ts'
import uploadPacePlugin, { clientErrorHandler } from './plugins/upload-pace.ts'
import { STOP_GRACE_MS } from './pipeline/consumer.ts'
import { MAX_EVENT_BYTES } from './pipeline/intake.ts'
import servicesPlugin from './plugins/services.ts'
import apiRoutes from './routes/api/index.ts'
import devRoutes from './routes/dev.ts'
import eventRoutes from './routes/events.ts'
import healthRoutes from './routes/health.ts'
import kitWebhookRoutes from './routes/kit-webhooks.ts'
import oauthRoutes from './routes/oauth.ts'
import uiRoutes from './routes/ui.ts'

export interface BuildOptions {
  config: Config
  /** Where log lines go (tests capture them); stdout when absent. */
  logStream?: DestinationStream
  pipeline?: PipelineOptions
  /** Timings of the event bus consumer (tests shorten them). */
  eventBus?: EventBusOptions
}

export const BODY_LIMIT = MAX_EVENT_BYTES

/**
 * Node checks request deadlines on an interval (30 s by default), which would let a stalled
 * request live up to twice its timeout; checking every second (or faster for short timeouts)
 * closes it close to the deadline.
 */
function deadlineCheckInterval(requestTimeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(requestTimeoutMs / 4)))
}

export async function buildApp({ config, logStream, pipeline = {}, eventBus = {} }: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config.logLevel, logStream),
    logController: new RequestLogController(),
    bodyLimit: BODY_LIMIT,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: {
      headersTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: deadlineCheckInterval(config.requestTimeoutMs),
    },
    trustProxy: false,
    // Node's request timeout, except for member-file uploads under their own deadline (upload-pace).
    clientErrorHandler,
    // Also bounds each close hook: stopping the consumer may take its whole grace for work in
    // flight, and a hook cut short would fail the shutdown and close the database under it.
    pluginTimeout: STOP_GRACE_MS + 10_000,
    ajv: { customOptions: { allErrors: false, removeAdditional: false, coerceTypes: 'array' } },
    // A URL the router cannot even decode (e.g. `%ZZ`) gets the project's error shape too.
    frameworkErrors: (_error, _request, reply) => {
      void (reply as FastifyReply)
        .status(400)
        .header('cache-control', 'no-store')
        .header('x-content-type-options', 'nosniff')
        .send({
          error: {
            code: 'invalid_request',
            message: 'The request URL cannot be read (a malformed %-escape?); check the address and try again.',
          },
        })
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(configPlugin, { config })
  await app.register(errorsPlugin)
  await app.register(nulGuardPlugin)
  if (config.devHost) await app.register(devHostPlugin)
  await app.register(dbPlugin)
  await app.register(metricsPlugin)
  await app.register(authPlugin)
  await app.register(rateLimitPlugin)
  await app.register(uploadPacePlugin)
  await app.register(swagger, {
    openapi: {
      info: { title: 'Kit for App Station', version: '0.1.0', description: 'Settings API, event intake and operations.' },
      components: { securitySchemes: { session: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  })

  await app.register(kitPlugin)
  await app.register(servicesPlugin)
  await app.register(pipelinePlugin, pipeline)
  await app.register(platformEventsPlugin)
  await app.register(kitWatchPlugin)
  await app.register(eventBusPlugin, eventBus)

  await app.register(healthRoutes)
  await app.register(eventRoutes)
  await app.register(kitWebhookRoutes)
  const { oauth } = app.services
  // The panel is served by the plugin itself: its origin is the plugin's public one.
  if (oauth && config.publicUrl) await app.register(oauthRoutes, { oauth, panelOrigin: new URL(config.publicUrl).origin })
  await app.register(apiRoutes, { prefix: '/api/v1' })
  await app.register(uiRoutes)
  if (config.devHost) await app.register(devRoutes)
  app.get('/docs/openapi.json', { schema: { hide: true }, onRequest: app.requireOperatorToken }, async () => app.swagger())

  return app
}
