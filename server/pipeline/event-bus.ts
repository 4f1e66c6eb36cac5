/**
 * Member events from the platform's bus: a durable JetStream pull consumer, shared by every
 * instance, whose messages go through the same intake as HTTP requests. A message is acked only
 * once its event is committed (or known already), naked with a growing delay when storing fails,
 * and terminated when it can never be accepted (bad signature, invalid envelope, not JSON, too
 * large) — logged with the reason, never with its body, at most one line per interval however
 * many are refused. A stream the plugin creates has limits (bytes, messages, age).
 */
import type { FastifyBaseLogger } from 'fastify'
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JsMsg,
  type JetStreamManager,
} from '@nats-io/jetstream'
import { Match, connect, millis, nanos, type NatsConnection } from '@nats-io/transport-node'
import type { Counter } from 'prom-client'
import type { EventBusConfig } from '../config.ts'
import { LogThrottle } from '../lib/log-throttle.ts'
import type { IntakeInput, IntakeResult } from './intake.ts'

/** The signature headers a bus message carries, as on an HTTP request. */
export const SIGNATURE_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const

export type BusOutcome = 'accepted' | 'duplicate' | 'invalid_signature' | 'invalid_event' | 'payload_too_large' | 'storage_error'

export interface EventBusTuning {
  /** A storage error naks with this delay, doubling per redelivery up to `nakMaxMs`. */
  nakBaseMs: number
  nakMaxMs: number
  /** How long NATS waits for an ack before redelivering (set when the plugin creates the consumer). */
  ackWaitMs: number
  /** Messages checked and stored at once (their commits are shared). */
  maxInFlight: number
  /** Stopping waits this long for messages in flight; the rest are redelivered after `ackWaitMs`. */
  stopGraceMs: number
  /** Pause between attempts to connect, or to find or create the stream and consumer. */
  retryMs: number
  /** At most one "refused a message" line per this interval; the next line counts those left out. */
  refusedLogIntervalMs: number
}

/** The longest pause between attempts to reach the bus. */
const MAX_RETRY_MS = 30_000

export const DEFAULT_TUNING: EventBusTuning = {
  nakBaseMs: 1000,
  nakMaxMs: 60_000,
  ackWaitMs: 30_000,
  maxInFlight: 64,
  stopGraceMs: 5000,
  retryMs: 2000,
  refusedLogIntervalMs: 10_000,
}

export interface EventBusDeps {
  config: EventBusConfig
  accept: (input: IntakeInput) => Promise<IntakeResult>
  log: FastifyBaseLogger
  messages: Counter<'outcome'>
  tuning?: Partial<EventBusTuning>
}

/** The servers without any user or password they may carry, for log lines. */
export const redactedServers = (servers: string[]) =>
  servers.map((s) => {
    const url = new URL(s)
    return `${url.protocol}//${url.host}`
  })

export function nakDelayMs(deliveryCount: number, { nakBaseMs, nakMaxMs }: Pick<EventBusTuning, 'nakBaseMs' | 'nakMaxMs'>): number {
  return Math.min(nakMaxMs, nakBaseMs * 2 ** Math.max(0, Math.min(deliveryCount - 1, 20)))
}

export class EventBus {
  private readonly tuning: EventBusTuning
  private readonly log: FastifyBaseLogger
  private running = false
  private loop: Promise<void> | null = null
  private nc: NatsConnection | null = null
  private messages: ConsumerMessages | null = null
  private readonly inFlight = new Set<Promise<void>>()
  private readonly refusedLog: LogThrottle
  private readonly stopping = new AbortController()
  private readonly stopped = new Promise<void>((resolve) => this.stopping.signal.addEventListener('abort', () => resolve(), { once: true }))
  private consumingResolve!: () => void
  /** Resolves once messages are being consumed (the first time). */
  readonly consuming: Promise<void> = new Promise((resolve) => {
    this.consumingResolve = resolve
  })

  constructor(private readonly d: EventBusDeps) {
    this.tuning = { ...DEFAULT_TUNING, ...d.tuning }
    this.log = d.log.child({ component: 'event-bus', stream: d.config.stream, consumer: d.config.consumer })
    this.refusedLog = new LogThrottle(this.tuning.refusedLogIntervalMs)
  }

  /** Connects and consumes in the background; the app serves HTTP meanwhile, even while NATS is down. */
  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Stops pulling, lets messages in flight finish (up to the grace), then drains the connection. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.stopping.abort()
    await this.messages?.close()
    await this.loop
    await this.settleInFlight()
    const leftOut = this.refusedLog.drain()
    if (leftOut > 0)
      this.log.warn(
        { leftOut },
        `refused ${leftOut} more messages from the event bus since the last line (counted in kit_bus_messages_total)`,
      )
    const nc = this.nc
    this.nc = null
    if (nc && !nc.isClosed()) {
      await nc.drain().catch((err: unknown) => {
        this.log.warn({ err }, 'draining the event bus connection failed; closing it')
        return nc.close()
      })
    }
  }

  private async run(): Promise<void> {
    let failures = 0
    while (this.running) {
      let waitMs = this.tuning.retryMs
      try {
        const nc = this.nc && !this.nc.isClosed() ? this.nc : await this.connect()
        if (!nc) return
        failures = 0
        await this.consume(nc)
      } catch (err) {
        if (!this.running) return
        failures += 1
        // Doubling pauses while the bus stays unusable, so a long outage is not a log line a second.
        waitMs = Math.min(MAX_RETRY_MS, this.tuning.retryMs * 2 ** Math.min(failures - 1, 10))
        this.log.error({ err, failures }, `the event bus is not usable; trying again in ${waitMs} ms`)
      }
      if (this.running) await this.pause(waitMs)
    }
  }

  private async connect(): Promise<NatsConnection | null> {
    const servers = this.d.config.servers
    const nc = await connect({
      servers,
      ...this.d.config.auth,
      name: 'kit-for-appstation',
      // After the first connection the client reconnects by itself, for as long as it takes.
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: Math.min(this.tuning.retryMs, 2000),
      timeout: 5000,
    })
    if (!this.running) {
      await nc.close()
      return null
    }
    this.nc = nc
    this.log.info({ servers: redactedServers(servers) }, 'connected to the event bus')
    this.watchConnection(nc).catch((err: unknown) => this.log.warn({ err }, 'stopped watching the event bus connection'))
    return nc
  }

  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') this.log.warn({ server: status.server }, 'lost the event bus connection; reconnecting')
      else if (status.type === 'reconnect') this.log.info({ server: status.server }, 'reconnected to the event bus')
      else if (status.type === 'error') this.log.error({ err: status.error }, 'the event bus connection reported an error')
    }
  }

  /** Consumes until the iterator ends: on stop, or when the consumer or stream disappeared. */
  private async consume(nc: NatsConnection): Promise<void> {
    const jsm = await jetstreamManager(nc)
    await this.ensureStream(jsm)
    await this.ensureConsumer(jsm)
    const consumer = await jetstream(nc).consumers.get(this.d.config.stream, this.d.config.consumer)
    const messages = await consumer.consume({ max_messages: this.tuning.maxInFlight })
    this.messages = messages
    if (!this.running) {
      await messages.close()
      return
    }
    this.watchConsumer(messages).catch((err: unknown) => this.log.warn({ err }, 'stopped watching the event bus consumer'))
    this.log.info({ subject: this.d.config.subject }, 'consuming member events from the event bus')
    this.consumingResolve()
    for await (const m of messages) {
      if (this.inFlight.size >= this.tuning.maxInFlight) await Promise.race([...this.inFlight, this.stopped])
      if (!this.running) {
        // Pulled but not started: another instance may take it at once.
        this.settle(() => m.nak(), { seq: m.seq })
        continue
      }
      const work: Promise<void> = this.handle(m).finally(() => this.inFlight.delete(work))
      this.inFlight.add(work)
    }
  }

  /** A deleted stream or consumer ends the iterator, so the loop finds or creates them again. */
  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (s.type === 'consumer_not_found' || s.type === 'stream_not_found' || s.type === 'consumer_deleted') {
        this.log.warn({ status: s.type }, 'the event bus stream or consumer is gone; setting it up again')
        await messages.close()
        return
      }
    }
  }

  /**
   * The stream is found by name, and created only when missing (file storage, within the
   * EVENT_BUS_STREAM_MAX_* limits, the oldest messages dropped first); an existing stream,
   * whoever created it, is used as it is and never changed — with a warning when it has no limit.
   */
  private async ensureStream(jsm: JetStreamManager): Promise<void> {
    const { stream, subject, streamLimits } = this.d.config
    try {
      const { config } = await jsm.streams.info(stream)
      if (config.max_bytes < 0 && config.max_msgs < 0 && !config.max_age) {
        this.log.warn('the event bus stream keeps every message forever (no byte, message or age limit); set limits on it')
      }
      return
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
    await jsm.streams.add({
      name: stream,
      subjects: [subject],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_bytes: streamLimits.maxBytes,
      max_msgs: streamLimits.maxMsgs,
      max_age: nanos(streamLimits.maxAgeMs),
    })
    this.log.info(
      { subject, maxBytes: streamLimits.maxBytes, maxMsgs: streamLimits.maxMsgs, maxAgeMs: streamLimits.maxAgeMs },
      'created the event bus stream',
    )
  }

  /** The durable pull consumer every instance shares; created when missing, otherwise used as it is. */
  private async ensureConsumer(jsm: JetStreamManager): Promise<void> {
    const { stream, consumer, subject } = this.d.config
    try {
      const info = await jsm.consumers.info(stream, consumer)
      const filter = info.config.filter_subject
      if (filter && filter !== subject) {
        this.log.warn({ filter, subject }, 'the event bus consumer filters another subject than EVENT_BUS_SUBJECT; it is used as it is')
      }
      return
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
    await jsm.consumers.add(stream, {
      durable_name: consumer,
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.tuning.ackWaitMs),
      // Storage errors are retried until storage works again; messages that can never be accepted are terminated.
      max_deliver: -1,
    })
    this.log.info({ subject }, 'created the event bus consumer')
  }

  private async handle(m: JsMsg): Promise<void> {
    const headers: Record<string, string | undefined> = {}
    for (const name of SIGNATURE_HEADERS) {
      const value = m.headers?.get(name, Match.IgnoreCase)
      if (value) headers[name] = value
    }
    const where = { seq: m.seq, subject: m.subject, deliveries: m.info.deliveryCount }
    let result: IntakeResult
    try {
      result = await this.d.accept({
        raw: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength),
        headers,
        // The signature must have been made within 5 minutes of the stream storing the message,
        // so a backlog read later is still accepted and a replayed old message is not.
        signedNear: millis(m.info.timestampNanos),
      })
    } catch (err) {
      const delayMs = nakDelayMs(m.info.deliveryCount, this.tuning)
      this.d.messages.inc({ outcome: 'storage_error' })
      this.log.error({ err, ...where, retryInMs: delayMs }, 'storing an event from the bus failed; it will be delivered again')
      this.settle(() => m.nak(delayMs), where)
      return
    }
    if (result.outcome === 'refused') {
      this.d.messages.inc({ outcome: result.code })
      const leftOut = this.refusedLog.take()
      if (leftOut !== null) {
        this.log.warn(
          { ...where, eventId: headers['webhook-id'], code: result.code, reason: result.error.message, leftOut },
          leftOut > 0
            ? `refused a message from the event bus (and ${leftOut} more since the last line, counted in kit_bus_messages_total)`
            : 'refused a message from the event bus',
        )
      }
      // Without a reason: servers before 2.10 ignore a termination that carries one.
      this.settle(() => m.term(), where)
      return
    }
    this.d.messages.inc({ outcome: result.outcome })
    try {
      await m.ackAck()
    } catch (err) {
      // The event is stored: a redelivery is answered as a duplicate and acked then.
      this.log.warn(
        { err, ...where, eventId: result.id },
        'the ack of a stored event was not confirmed; it will be delivered again and recognised',
      )
    }
  }

  private settle(answer: () => void, where: Record<string, unknown>): void {
    try {
      answer()
    } catch (err) {
      this.log.warn({ err, ...where }, 'could not answer a message from the event bus; it will be delivered again')
    }
  }

  private async settleInFlight(): Promise<void> {
    if (this.inFlight.size === 0) return
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.tuning.stopGraceMs)
    })
    const done = await Promise.race([Promise.allSettled([...this.inFlight]).then(() => 'done' as const), grace])
    clearTimeout(timer)
    if (done === 'timeout') {
      this.log.warn({ inFlight: this.inFlight.size }, 'stopped with event bus messages still being stored; they will be delivered again')
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.stopping.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer)
          resolve()
        },
        { once: true },
      )
    })
  }
}

/** JetStream's own codes for a missing stream or consumer. */
function isNotFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound)
  )
}
