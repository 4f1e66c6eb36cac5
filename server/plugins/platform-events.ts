/**
 * Events to the platform (contract §7): the port other code emits through, the owner's view of
 * them, and — when PLATFORM_EVENTS_URL and PLATFORM_EVENTS_SECRET are set — the sender, started
 * with the app and stopped before the database closes.
 */
import fp from 'fastify-plugin'
import { PlatformEvents } from '../pipeline/platform-events.ts'
import { PlatformSender, type PlatformSenderOptions } from '../pipeline/platform-outbox.ts'
import { PlatformEventService } from '../services/platform-events.ts'

export interface PlatformEventsDecoration {
  /** Where observations become events: `emit`, `connectionInvalid`, `deliveryFailed`. */
  port: PlatformEvents
  service: PlatformEventService
  /** Null when not configured. */
  sender: PlatformSender | null
}

/** Timings tests shorten; `autoStart: false` leaves the sender to be driven by hand. */
export type PlatformEventsOptions = Pick<PlatformSenderOptions, 'backoff' | 'timeoutMs' | 'leaseMs' | 'idlePollMs'> & {
  autoStart?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    platformEvents: PlatformEventsDecoration
  }
}

export default fp<PlatformEventsOptions>(
  async (app, options) => {
    const outbox = app.storage.platformOutbox
    const target = app.config.platformEvents
    let sender: PlatformSender | null = null
    const port = new PlatformEvents({ outbox, configured: target !== null, notify: () => sender?.notify() })
    if (target) {
      const { autoStart: _autoStart, ...timings } = options
      sender = new PlatformSender({
        outbox,
        url: target.url,
        secret: target.secret,
        log: app.log,
        onIdle: () => port.reportWaitingFailures(),
        retentionMs: app.config.retentionDays * 24 * 60 * 60_000,
        ...timings,
      })
    }
    const service = new PlatformEventService(outbox, target !== null, () => sender?.notify())
    app.services.connections.onInvalid(async (communityId) => {
      await port.connectionInvalid(communityId)
    })
    app.pipeline.consumer.onFailed(async (delivery, reason) => port.deliveryFailed(delivery.communityId, reason))
    app.decorate('platformEvents', { port, service, sender })

    if (sender && options.autoStart !== false) {
      const started = sender
      app.addHook('onReady', async () => {
        // One process owns an embedded database: a lease it finds was left by a run that died.
        if (app.storage.dialect === 'sqlite') await outbox.releaseLeases()
        started.start()
      })
    }
    app.addHook('preClose', async () => {
      await sender?.stop()
    })
  },
  { name: 'platform-events', dependencies: ['config', 'db', 'services', 'pipeline'] },
)
