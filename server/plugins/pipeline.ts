/** The event pipeline: the durable queue, the processor that talks to Kit, and the consumer. */
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import { BulkSender } from '../pipeline/bulk.ts'
import { Consumer } from '../pipeline/consumer.ts'
import { EventIntake, type IntakeInput, type IntakeResult } from '../pipeline/intake.ts'
import { KitIdCache } from '../pipeline/kit-ids.ts'
import { KitSideMemory } from '../pipeline/kit-watch.ts'
import { PersonalDataPurge } from '../pipeline/personal-data.ts'
import { DeliveryProcessor } from '../pipeline/processor.ts'
import { defaultRetryPolicy, type RetryPolicy } from '../core/retry-policy.ts'
import type { DeliveryQueue } from '../core/queue.ts'
import { Retention } from '../pipeline/retention.ts'
import { DeliveryService } from '../services/deliveries.ts'
import { SyncService } from '../services/syncs.ts'

/** The embedded queue takes every lease back at start, so a long lease costs nothing after a crash. */
const EMBEDDED_LEASE_MS = 120_000
/** A shared queue waits for a dead instance's leases to expire: shorter means its work moves on sooner. */
const SHARED_LEASE_MS = 30_000

export interface Pipeline {
  queue: DeliveryQueue
  consumer: Consumer
  deliveries: DeliveryService
  retention: Retention
  syncs: SyncService
  /** Checks, deduplicates and stores one signed member event (HTTP and the event bus alike). */
  accept: (input: IntakeInput) => Promise<IntakeResult>
}

export interface PipelineOptions {
  /** Start consuming when the app is ready (tests may drive it by hand). */
  autoStart?: boolean
  concurrency?: number
  /** Most deliveries in flight for one Kit credential (default 2), so other communities keep slots. */
  perCredential?: number
  retry?: Partial<RetryPolicy>
}

declare module 'fastify' {
  interface FastifyInstance {
    pipeline: Pipeline
  }
}

export default fp<PipelineOptions>(
  async (app, options) => {
    const { queue } = app.storage
    // The platform-events plugin registers after this one; deliveries run once both are ready.
    const kitSide = new KitSideMemory(app.storage.kitStates, (input) => app.platformEvents.port.emit(input))
    const ids = new KitIdCache({ shared: app.storage.knownTags })
    const processor = new DeliveryProcessor({
      subscribers: app.storage.subscribers,
      queue,
      connections: app.services.connections,
      mappings: app.services.mappings,
      kit: app.kit,
      ids,
      heldTags: app.storage.heldTags,
      log: app.log,
      retry: { ...defaultRetryPolicy(app.config.kitRateWindowMs), ...options.retry },
      ownWrites: kitSide,
      kitStates: kitSide,
      consent: app.services.consent,
      erasures: app.services.erasures,
    })
    const personalData = new PersonalDataPurge({ queue, subscribers: app.storage.subscribers, kitStates: app.storage.kitStates })
    const consumer = new Consumer({
      queue,
      processor,
      budget: app.kitBudget,
      credentials: () => app.services.connections.connectedCredentials(),
      leaseMs: app.config.deliveryLeaseMs ?? (app.storage.dialect === 'postgres' ? SHARED_LEASE_MS : EMBEDDED_LEASE_MS),
      log: app.log,
      metrics: app.metrics,
      deletedMembers: personalData,
      bulk: new BulkSender({
        queue,
        subscribers: app.storage.subscribers,
        connections: app.services.connections,
        mappings: app.services.mappings,
        consent: app.services.consent,
        kit: app.kit,
        ids,
        heldTags: app.storage.heldTags,
        kitStates: kitSide,
        log: app.log,
      }),
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      ...(options.perCredential ? { perCredential: options.perCredential } : {}),
    })
    const deliveries = new DeliveryService(
      app.storage.deliveries,
      queue,
      () => consumer.notify(),
      (communityId) => app.services.connections.isConnected(communityId),
      app.storage,
    )
    const syncs = new SyncService({
      syncs: app.storage.syncs,
      subscribers: app.storage.subscribers,
      connections: app.services.connections,
      mappings: app.services.mappings,
      consent: app.services.consent,
      budget: app.kitBudget,
      limits: { maxBytes: app.config.syncMaxBytes, maxRows: app.config.syncMaxRows },
      notify: () => consumer.notify(),
    })

    app.services.connections.onConnected(async (communityId) => {
      const resumed = await queue.resumeHeld(communityId, Date.now())
      if (resumed > 0) app.log.info({ communityId, resumed }, 'resumed held deliveries after a working key was saved')
      consumer.notify()
    })
    app.metrics.queueDepth.reset()
    const gauge = app.metrics.queueDepth as unknown as { collect?: () => Promise<void> }
    gauge.collect = async () => {
      for (const [status, n] of Object.entries(await queue.depth())) app.metrics.queueDepth.set({ status }, n)
    }

    const retentionDeleted = new Counter({
      name: 'kit_retention_deleted_total',
      help: 'Rows deleted by retention, by table',
      labelNames: ['table'],
      registers: [app.metrics.registry],
    })
    const retention = new Retention({
      queue,
      history: app.storage.mappingHistory,
      retentionDays: app.config.retentionDays,
      log: app.log,
      personalData,
      erasures: app.storage.erasures,
      onPurged: ({ deliveries: d, events }) => {
        retentionDeleted.inc({ table: 'deliveries' }, d)
        retentionDeleted.inc({ table: 'events' }, events)
      },
      onVersionsPurged: (versions) => retentionDeleted.inc({ table: 'mapping_versions' }, versions),
    })

    const intake = new EventIntake({
      queue,
      eventsSecrets: app.config.eventsSecrets,
      isConnected: (communityId) => app.services.connections.isConnected(communityId),
      notify: () => consumer.notify(),
    })

    app.decorate('pipeline', { queue, consumer, deliveries, retention, syncs, accept: (input: IntakeInput) => intake.accept(input) })
    app.addHook('onReady', async () => {
      // An upload cannot outlive the request deadline; twice that leaves room for clock drift.
      const dropped = await syncs.recoverInterrupted(app.storage.dialect === 'postgres' ? 2 * app.config.requestTimeoutMs : 0)
      if (dropped > 0) app.log.info({ dropped }, 'dropped syncs whose member file was still being read when the previous run stopped')
      retention.start()
    })

    if (options.autoStart !== false) {
      app.addHook('onReady', async () => {
        const recovered = await queue.recover()
        if (recovered > 0) app.log.info({ recovered }, 'took back deliveries left in flight by a previous run')
        consumer.start()
      })
    }
    app.addHook('preClose', async () => {
      await Promise.all([consumer.stop(), retention.stop()])
    })
  },
  { name: 'pipeline', dependencies: ['db', 'services', 'kit', 'metrics'] },
)
