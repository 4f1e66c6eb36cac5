/** Prometheus metrics (CONTRACT §6), one registry per app instance. */
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

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
  }
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
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.header('content-type', registry.contentType)
      return registry.metrics()
    })
  },
  { name: 'metrics', dependencies: ['config'] },
)
