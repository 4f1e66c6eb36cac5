/**
 * Prometheus metrics, one registry per app instance, and the operators' token that guards
 * /metrics (and the OpenAPI description) when METRICS_TOKEN is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { AppError } from '../lib/errors.ts'

export interface Metrics {
  registry: Registry
  eventsReceived: Counter<'status'>
  eventsProcessed: Counter<'status'>
  kitRequests: Counter<'status'>
  queueDepth: Gauge<'status'>
  deliveryLatency: Histogram
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
    /** onRequest hook: 401 unless the request carries METRICS_TOKEN (a no-op when it is unset). */
    requireOperatorToken: (request: FastifyRequest) => Promise<void>
  }
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest()

/** Compares digests, so neither the token's length nor its bytes leak through timing. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (\S+)$/.exec(header ?? '')
  return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), digest(token))
}

export default fp(
  async (app) => {
    const registry = new Registry()
    if (app.config.production) collectDefaultMetrics({ register: registry })
    const metrics: Metrics = {
      registry,
      eventsReceived: new Counter({
        name: 'kit_events_received_total',
        help: 'Member events received at /events, by outcome',
        labelNames: ['status'],
        registers: [registry],
      }),
      eventsProcessed: new Counter({
        name: 'kit_events_processed_total',
        help: 'Deliveries finished or rescheduled, by resulting status',
        labelNames: ['status'],
        registers: [registry],
      }),
      kitRequests: new Counter({
        name: 'kit_api_requests_total',
        help: 'Requests sent to the Kit API, by HTTP status (or network_error)',
        labelNames: ['status'],
        registers: [registry],
      }),
      queueDepth: new Gauge({
        name: 'kit_queue_depth',
        help: 'Deliveries waiting to be applied, by status',
        labelNames: ['status'],
        registers: [registry],
      }),
      deliveryLatency: new Histogram({
        name: 'kit_delivery_latency_seconds',
        help: 'Time from receiving an event to its delivery finishing',
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
        registers: [registry],
      }),
    }
    app.decorate('metrics', metrics)

    const { metricsToken } = app.config
    app.decorate('requireOperatorToken', async (request: FastifyRequest) => {
      if (metricsToken === null || bearerMatches(request.headers.authorization, metricsToken)) return
      throw new AppError(401, 'invalid_token', 'Send the operators\' token as "Authorization: Bearer <METRICS_TOKEN>".', {
        'www-authenticate': 'Bearer',
      })
    })

    app.get('/metrics', { schema: { hide: true }, onRequest: app.requireOperatorToken }, async (_request, reply) => {
      reply.header('content-type', registry.contentType)
      return registry.metrics()
    })
  },
  { name: 'metrics', dependencies: ['config'] },
)
