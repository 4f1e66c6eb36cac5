/**
 * The event bus intake: with EVENT_BUS_URL set, member events are also consumed from a JetStream
 * stream, through the same intake as /events. Without it this plugin does nothing (and the NATS
 * client is never loaded), so the embedded setup needs no NATS at all.
 */
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import type { EventBus, EventBusTuning } from '../pipeline/event-bus.ts'

export type EventBusOptions = Partial<EventBusTuning>

declare module 'fastify' {
  interface FastifyInstance {
    /** The bus consumer, or null when EVENT_BUS_URL is not set. */
    eventBus: EventBus | null
  }
}

export default fp<EventBusOptions>(
  async (app, tuning) => {
    const messages = new Counter({
      name: 'kit_bus_messages_total',
      help: 'Messages read from the event bus, by outcome (accepted, duplicate, invalid_signature, invalid_event, payload_too_large, storage_error)',
      labelNames: ['outcome'],
      registers: [app.metrics.registry],
    })
    const config = app.config.eventBus
    if (!config) {
      app.decorate('eventBus', null)
      return
    }
    const { EventBus } = await import('../pipeline/event-bus.ts')
    const bus = new EventBus({ config, accept: app.pipeline.accept, log: app.log, messages, tuning })
    app.decorate('eventBus', bus)
    app.addHook('onReady', async () => bus.start())
    // Before the pipeline and the database close: messages in flight still commit and get acked.
    app.addHook('preClose', async () => bus.stop())
  },
  { name: 'event-bus', dependencies: ['pipeline', 'metrics', 'config'] },
)
