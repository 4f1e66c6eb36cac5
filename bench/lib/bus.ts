/**
 * The event bus side of the cluster drills: a stream, subject and consumer of this run only (so
 * runs never see each other's messages), publishing as the platform does (the signature in the
 * message headers, the event id as the message id), and what the shared consumer still holds.
 */
import { randomBytes } from 'node:crypto'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node'
import { signature, type MemberEvent } from './events.ts'

export const BUS_URL = process.env.EVENT_BUS_URL || 'nats://127.0.0.1:4222'

export interface BusRun {
  nc: NatsConnection
  stream: string
  consumer: string
  /** Subjects published to are `<prefix>.<community>.<type>`. */
  prefix: string
  /** The EVENT_BUS_* settings every instance gets. */
  env: Record<string, string>
  /** Deletes the stream (and with it the consumer), then closes the connection. */
  close(): Promise<void>
}

export async function startBusRun(label: string): Promise<BusRun> {
  const tag = randomBytes(4).toString('hex')
  let nc: NatsConnection
  try {
    nc = await connect({ servers: BUS_URL, timeout: 5000 })
  } catch (err) {
    throw new Error(
      `NATS is not reachable at ${BUS_URL} (${(err as Error).message}); start nats-server with JetStream (-js) or set EVENT_BUS_URL`,
      { cause: err },
    )
  }
  const stream = `KIT_${label.toUpperCase()}_${tag}`
  const consumer = `kit-${label}-${tag}`
  const prefix = `kitdrill.${label}.${tag}`
  return {
    nc,
    stream,
    consumer,
    prefix,
    env: { EVENT_BUS_URL: BUS_URL, EVENT_BUS_SUBJECT: `${prefix}.>`, EVENT_BUS_STREAM: stream, EVENT_BUS_CONSUMER: consumer },
    async close() {
      const jsm = await jetstreamManager(nc)
      await jsm.streams.delete(stream).catch(() => false)
      await nc.close()
    },
  }
}

export interface RawMessage {
  /** Appended to the run's prefix. */
  subject: string
  body: Uint8Array | string
  headers: Record<string, string>
  /** JetStream's duplicate window drops a second message with the same id. */
  msgId?: string
}

/** The headers an event is published with: the same three as over HTTP. */
export function busHeaders(hmacKey: string, id: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature(hmacKey, id, timestamp, body) }
}

/** Publishes with a few acks outstanding; resolves true per message the stream stored. */
export async function publishRaw(run: BusRun, messages: RawMessage[], concurrency = 64): Promise<boolean[]> {
  const js = jetstream(run.nc)
  const stored = new Array<boolean>(messages.length).fill(false)
  let next = 0
  const worker = async () => {
    while (next < messages.length) {
      const index = next++
      const m = messages[index] as RawMessage
      const h = natsHeaders()
      for (const [name, value] of Object.entries(m.headers)) h.set(name, value)
      try {
        await js.publish(`${run.prefix}.${m.subject}`, typeof m.body === 'string' ? Buffer.from(m.body) : m.body, {
          headers: h,
          ...(m.msgId ? { msgID: m.msgId } : {}),
        })
        stored[index] = true
      } catch {
        stored[index] = false
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, messages.length) }, worker))
  return stored
}

/** Signed member events on the bus; resolves per event 202 when the stream stored it, 0 when not (as postAll does). */
export async function publishEvents(run: BusRun, hmacKey: string, events: MemberEvent[]): Promise<number[]> {
  const messages = events.map((e): RawMessage => {
    const body = JSON.stringify(e)
    return { subject: `${e.communityid}.${e.type}`, body, headers: busHeaders(hmacKey, e.id, body), msgId: e.id }
  })
  return (await publishRaw(run, messages)).map((ok) => (ok ? 202 : 0))
}

export interface ConsumerState {
  /** Messages not yet delivered to any instance. */
  pending: number
  /** Delivered, neither acked nor terminated yet. */
  ackPending: number
  redelivered: number
  streamMessages: number
}

/** null until an instance has created the consumer. */
export async function consumerState(run: BusRun): Promise<ConsumerState | null> {
  const jsm = await jetstreamManager(run.nc)
  try {
    const info = await jsm.consumers.info(run.stream, run.consumer)
    const stream = await jsm.streams.info(run.stream)
    return {
      pending: info.num_pending,
      ackPending: info.num_ack_pending,
      redelivered: info.num_redelivered,
      streamMessages: stream.state.messages,
    }
  } catch {
    return null
  }
}
