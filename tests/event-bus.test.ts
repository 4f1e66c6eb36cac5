// Over 400 lines: each test owns a stream, subject and consumer on a real NATS server; they share one set-up and its teardown.
/**
 * Member events from a real NATS JetStream server at 127.0.0.1:4222, through the same intake as
 * /events. Every test has its own stream, subject and consumer (named after this run), deleted
 * afterwards. Without NATS the tests are skipped on a developer machine and fail in CI.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node'
import type { Counter } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import { DEFAULT_STREAM_LIMITS, loadConfig, type EventBusConfig } from '../server/config.ts'
import type { NewDelivery } from '../server/core/queue.ts'
import type { EventBusOptions } from '../server/plugins/event-bus.ts'
import { buildTestApp } from './helpers/app.ts'
import { tempDb } from './helpers/config.ts'
import { makeEvent, postEvent, signedHeaders, waitFor } from './helpers/events.ts'
import { asA, PipelineHarness } from './helpers/pipeline.ts'
import { createTestDatabase, postgresAvailable } from './helpers/postgres.ts'
import { freePort } from './helpers/server-process.ts'

const NATS_URL = 'nats://127.0.0.1:4222'
const NATS_SERVER = '/usr/sbin/nats-server'
const SKIPPED = 'NATS not reachable at 127.0.0.1:4222: event-bus tests skipped'

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port, timeout: 1000 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

const natsUp = await reachable(4222)
const pgUp = natsUp && (await postgresAvailable())
if (!natsUp) {
  console.warn(SKIPPED)
  if (process.env.CI) {
    it('has NATS with JetStream at 127.0.0.1:4222 in CI', () => {
      throw new Error(`${SKIPPED} — CI must run them: .ci/run starts nats-server with JetStream`)
    })
  }
}

const RUN = randomBytes(4).toString('hex')
let counter = 0
/** A stream, subject and consumer of this run only. */
function busConfig(url = NATS_URL): EventBusConfig {
  counter += 1
  return {
    servers: [url],
    auth: null,
    stream: `KITTEST_${RUN}_${counter}`,
    subject: `kittest.${RUN}.${counter}.members.>`,
    consumer: `kit-plugin-${RUN}-${counter}`,
    streamLimits: DEFAULT_STREAM_LIMITS,
  }
}

/** Short timings so redeliveries happen in a second, not half a minute. */
const FAST: EventBusOptions = { nakBaseMs: 100, nakMaxMs: 400, ackWaitMs: 1000, stopGraceMs: 300, retryMs: 200 }

const natsConnections: NatsConnection[] = []
const cleanups: (() => Promise<unknown>)[] = []

async function natsClient(url = NATS_URL): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await connect({ servers: [url], maxReconnectAttempts: -1, reconnectTimeWait: 200 })
  natsConnections.push(nc)
  return { nc, jsm: await jetstreamManager(nc) }
}

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(async () => {
  if (!natsUp) return
  const { nc, jsm } = await natsClient()
  for await (const stream of jsm.streams.list()) {
    if (stream.config.name.startsWith(`KITTEST_${RUN}_`)) await jsm.streams.delete(stream.config.name)
  }
  await nc.close()
  for (const c of natsConnections) if (!c.isClosed()) await c.close()
})

/** Publishes `body` on the stream, with the given signature headers as message headers. */
async function publish(nc: NatsConnection, subject: string, body: string | Buffer, signature: Record<string, string> = {}) {
  const h = natsHeaders()
  for (const [name, value] of Object.entries(signature)) if (name.startsWith('webhook-')) h.set(name, value)
  await jetstream(nc).publish(subject, typeof body === 'string' ? Buffer.from(body) : body, { headers: h })
}

async function publishSigned(nc: NatsConnection, config: EventBusConfig, secret: string, event: Record<string, unknown>) {
  const body = JSON.stringify(event)
  await publish(nc, subjectFor(config, event), body, signedHeaders(body, { secret }))
}

const subjectFor = (config: EventBusConfig, event: Record<string, unknown>) =>
  config.subject.replace('>', `${String(event.communityid)}.${String(event.type)}`)

async function busCount(app: FastifyInstance, outcome: string): Promise<number> {
  const counter = app.metrics.registry.getSingleMetric('kit_bus_messages_total') as Counter<'outcome'>
  const { values } = await counter.get()
  return values.find((v) => v.labels.outcome === outcome)?.value ?? 0
}

async function waitForAsync(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const start = Date.now()
  while (!(await probe())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const storedEvents = (app: FastifyInstance) => (app.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
const storedEventIds = (app: FastifyInstance) =>
  (app.sqlite.prepare('SELECT id FROM events').all() as { id: string }[]).map((row) => row.id)

async function busApp(config: EventBusConfig, tuning: EventBusOptions = FAST, secret = randomBytes(32).toString('base64')) {
  const built = await buildTestApp({ eventsSecrets: [secret], eventBus: config }, {}, tuning)
  cleanups.push(() => built.app.close())
  await built.app.eventBus?.consuming
  return { ...built, secret }
}

describe.skipIf(!natsUp)('events from the event bus', () => {
  it('delivers a signed event published on the bus to Kit just like one posted over HTTP', async () => {
    const config = busConfig()
    const harness = await PipelineHarness.start({ config: { eventBus: config } })
    cleanups.push(() => harness.close())
    await harness.app.eventBus?.consuming
    await harness.connect()
    const { nc } = await natsClient()

    const overHttp = await harness.send({ email: 'ada@example.com', firstName: 'Ada' })
    const event = makeEvent({ email: 'grace@example.com', firstName: 'Grace' })
    await publishSigned(nc, config, harness.secret, event)

    const http = await harness.settled(overHttp)
    const bus = await harness.settled(event.id as string)
    expect([http.status, bus.status]).toEqual(['succeeded', 'succeeded'])
    expect(harness.tagNames('grace@example.com')).toEqual(harness.tagNames('ada@example.com'))
    expect(harness.tagNames('grace@example.com')).toEqual(['New Member'])
    expect(harness.subscriber('grace@example.com')?.first_name).toBe('Grace')
    expect(JSON.parse(bus.steps).map((s: { kind: string }) => s.kind)).toEqual(JSON.parse(http.steps).map((s: { kind: string }) => s.kind))
    expect(await busCount(harness.app, 'accepted')).toBe(1)
  })

  it('stores an event sent both over HTTP and on the bus once, whichever comes first', async () => {
    const config = busConfig()
    const { app, secret } = await busApp(config)
    const { nc, jsm } = await natsClient()

    const first = makeEvent()
    expect((await postEvent(app, secret, first)).statusCode).toBe(202)
    await publishSigned(nc, config, secret, first)
    await waitForAsync(async () => (await busCount(app, 'duplicate')) === 1, 'the bus copy recognised as a duplicate')

    const second = makeEvent()
    await publishSigned(nc, config, secret, second)
    await waitForAsync(async () => (await busCount(app, 'accepted')) === 1, 'the bus event accepted')
    const again = await postEvent(app, secret, second)
    expect(again.statusCode).toBe(200)
    expect(again.json()).toEqual({ status: 'duplicate', id: second.id })

    expect(storedEvents(app)).toBe(2)
    const info = await jsm.consumers.info(config.stream, config.consumer)
    expect([info.num_ack_pending, info.num_pending, info.ack_floor.stream_seq]).toEqual([0, 0, 2])
  })

  it('naks a message when storing fails, and stores it when it is delivered again', async () => {
    const config = busConfig()
    const { app, secret, logs } = await busApp(config)
    const { nc, jsm } = await natsClient()
    app.sqlite.exec(`CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)

    const event = makeEvent()
    await publishSigned(nc, config, secret, event)
    await waitForAsync(async () => (await busCount(app, 'storage_error')) >= 2, 'two failed attempts to store the event')
    expect(storedEvents(app)).toBe(0)
    const waiting = await jsm.consumers.info(config.stream, config.consumer)
    expect(waiting.ack_floor.stream_seq).toBe(0)

    app.sqlite.exec('DROP TRIGGER refuse_events')
    await waitForAsync(async () => (await busCount(app, 'accepted')) === 1, 'the redelivered event accepted')
    expect(storedEvents(app)).toBe(1)
    const done = await jsm.consumers.info(config.stream, config.consumer)
    expect([done.num_ack_pending, done.ack_floor.stream_seq]).toEqual([0, 1])
    expect(logs.join('')).toContain('storing an event from the bus failed; it will be delivered again')
  })

  it('terminates 1,000 malformed or mis-signed messages without storing any, and stores the valid one among them, logging a line a minute', async () => {
    const config = busConfig()
    // No redelivery wanted here: on a busy machine a message can wait past a short ack wait.
    const { app, secret, logs } = await busApp(config, { ...FAST, ackWaitMs: 30_000, refusedLogIntervalMs: 60_000 })
    const { nc, jsm } = await natsClient()
    const subject = config.subject.replace('>', 'c_alpha.user.signed_up')
    const wrongSecret = randomBytes(32).toString('base64')

    const bad = (i: number): [string | Buffer, Record<string, string>] => {
      const event = makeEvent({ email: `bad-${i}@example.com` })
      const body = JSON.stringify(event)
      switch (i % 8) {
        case 0:
          return [body, signedHeaders(body, { secret: wrongSecret })]
        case 1:
          return [body, {}]
        case 2: {
          const text = `{"id": "evt_broken_${i}", not json`
          return [text, signedHeaders(text, { secret, id: `evt_broken_${i}` })]
        }
        case 3: {
          const invalid = JSON.stringify({ ...event, data: { member: { id: 'm_1' } } })
          return [invalid, signedHeaders(invalid, { secret, id: event.id as string })]
        }
        case 4:
          return [body, signedHeaders(body, { secret, id: `evt_other_${i}` })]
        case 5:
          return [body, signedHeaders(body, { secret, timestamp: Math.floor(Date.now() / 1000) - 600 })]
        case 6: {
          const headers = signedHeaders(body, { secret })
          return [`${body} `, headers]
        }
        default: {
          const huge = JSON.stringify({ ...event, padding: 'x'.repeat(300 * 1024) })
          return [huge, signedHeaders(huge, { secret })]
        }
      }
    }
    const valid = makeEvent({ email: 'valid@example.com' })
    for (let start = 0; start < 1000; start += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, k) => publish(nc, subject, ...bad(start + k))))
      if (start === 500) await publishSigned(nc, config, secret, valid)
    }

    await waitForAsync(
      async () => {
        const refused = await Promise.all(['invalid_signature', 'invalid_event', 'payload_too_large'].map((o) => busCount(app, o)))
        return refused.reduce((a, b) => a + b, 0) === 1000 && (await busCount(app, 'accepted')) === 1
      },
      'every message answered',
      60_000,
    )

    const rows = app.sqlite.prepare('SELECT id FROM events').all() as { id: string }[]
    expect(rows).toEqual([{ id: valid.id }])
    expect(await busCount(app, 'invalid_signature')).toBe(500)
    expect(await busCount(app, 'invalid_event')).toBe(375)
    expect(await busCount(app, 'payload_too_large')).toBe(125)
    // Terminations are not confirmed one by one: wait for the server to have them all.
    await waitForAsync(async () => {
      const info = await jsm.consumers.info(config.stream, config.consumer)
      return info.num_ack_pending === 0 && info.num_pending === 0 && info.ack_floor.stream_seq === 1001
    }, 'every message acknowledged or terminated')
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    await app.close()
    const log = logs.join('')
    expect(log).not.toContain('bad-0@example.com')
    expect(log).not.toContain('bad-4@example.com')
    // One line for the first refusal (more only if the run took over a minute), then the count of
    // those left out: every refusal is accounted for, in far fewer lines.
    const lines = logs
      .flatMap((chunk) => chunk.split('\n'))
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; code?: string; reason?: string; leftOut?: number })
    const refusedLines = lines.filter((line) => line.msg.startsWith('refused '))
    const perMessage = refusedLines.filter((line) => line.code !== undefined)
    expect(perMessage.length).toBeGreaterThanOrEqual(1)
    expect(perMessage.length).toBeLessThanOrEqual(3)
    expect(perMessage[0]?.reason).toEqual(expect.any(String))
    expect(perMessage.length + refusedLines.reduce((sum, line) => sum + (line.leftOut ?? 0), 0)).toBe(1000)
  }, 90_000)

  it.each([['SQLite'], ...(pgUp ? [['PostgreSQL']] : [])])(
    'terminates a signed event holding a NUL on %s, storing nothing, instead of retrying it',
    async (dialect) => {
      const database = dialect === 'PostgreSQL' ? await createTestDatabase('kitbusnul') : null
      if (database) cleanups.push(() => database.drop())
      const config = busConfig()
      const secret = randomBytes(32).toString('base64')
      const built = await buildTestApp(
        { eventsSecrets: [secret], eventBus: config, ...(database ? { databaseUrl: database.url, databasePoolSize: 2 } : {}) },
        {},
        FAST,
      )
      cleanups.push(() => built.app.close())
      await built.app.eventBus?.consuming
      const { nc, jsm } = await natsClient()
      const nul = [
        { ...makeEvent(), type: 'user.signed\u0000up' },
        { ...makeEvent(), communityid: 'c_alpha\u0000' },
        makeEvent({ memberId: 'm\u0000x' }),
      ]
      for (const event of nul) await publishSigned(nc, config, secret, event)
      await publishSigned(nc, config, secret, makeEvent({ memberId: 'm_clean' }))
      await waitForAsync(
        async () => (await busCount(built.app, 'invalid_event')) === 3 && (await busCount(built.app, 'accepted')) === 1,
        'every message answered',
      )
      await waitForAsync(
        async () => (await jsm.consumers.info(config.stream, config.consumer)).ack_floor.stream_seq === 4,
        'every message acknowledged or terminated',
      )
      expect(await busCount(built.app, 'storage_error')).toBe(0)
      const page = (await built.app.inject({ method: 'GET', url: '/api/v1/deliveries', headers: asA })).json() as {
        items: { member_email: string }[]
      }
      expect(page.items.map((d) => d.member_email)).toEqual(['m_clean@example.com'])
    },
  )

  it('keeps a message unacknowledged until its event is committed, then acks it', async () => {
    const config = busConfig()
    const { app, secret } = await busApp(config, { ...FAST, ackWaitMs: 30_000 })
    const { nc, jsm } = await natsClient()
    const queue = app.pipeline.queue
    const enqueue = queue.enqueue.bind(queue)
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const first = makeEvent()
    let received = false
    queue.enqueue = async (delivery: NewDelivery) => {
      if (delivery.eventId !== first.id) return enqueue(delivery)
      received = true
      await released
      return enqueue(delivery)
    }

    await publishSigned(nc, config, secret, first)
    await waitFor(() => received, { what: 'the event handed to storage' })
    // A second message, not held, is stored and acked: the consumer has had its turn, and the
    // first is still neither stored nor acked.
    const second = makeEvent()
    await publishSigned(nc, config, secret, second)
    await waitForAsync(async () => {
      const info = await jsm.consumers.info(config.stream, config.consumer)
      return storedEvents(app) === 1 && info.num_ack_pending === 1 && info.delivered.stream_seq === 2
    }, 'the second message stored and acked')
    const waiting = await jsm.consumers.info(config.stream, config.consumer)
    expect([waiting.num_ack_pending, waiting.ack_floor.stream_seq, storedEventIds(app)]).toEqual([1, 0, [second.id]])

    release()
    await waitForAsync(async () => (await jsm.consumers.info(config.stream, config.consumer)).ack_floor.stream_seq === 2, 'the ack')
    expect(storedEventIds(app).sort()).toEqual([first.id, second.id].sort())
  })

  it('redelivers a message to the next instance when the one that took it stops before committing', async () => {
    const config = busConfig()
    const secret = randomBytes(32).toString('base64')
    const first = await buildTestApp({ eventsSecrets: [secret], eventBus: config }, {}, FAST)
    await first.app.eventBus?.consuming
    const { nc, jsm } = await natsClient()
    let received = false
    first.app.pipeline.queue.enqueue = () => {
      received = true
      return new Promise(() => {})
    }
    await publishSigned(nc, config, secret, makeEvent())
    await waitFor(() => received, { what: 'the first instance receiving the event' })
    await first.app.close()
    expect(first.logs.join('')).toContain('stopped with event bus messages still being stored; they will be delivered again')
    expect((await jsm.consumers.info(config.stream, config.consumer)).ack_floor.stream_seq).toBe(0)

    const { app: second } = await busApp(config, FAST, secret)
    await waitFor(() => storedEvents(second) === 1, { what: 'the second instance storing the event' })
    await waitForAsync(async () => (await jsm.consumers.info(config.stream, config.consumer)).ack_floor.stream_seq === 1, 'the ack')
  })

  it('creates the stream (within its configured limits) and the durable consumer when missing, and uses existing ones as they are', async () => {
    const config = { ...busConfig(), streamLimits: { maxBytes: 64 * 1024 * 1024, maxMsgs: 5000, maxAgeMs: 3_600_000 } }
    const { jsm } = await natsClient()
    await busApp(config)
    const stream = await jsm.streams.info(config.stream)
    expect(stream.config.subjects).toEqual([config.subject])
    expect(stream.config.storage).toBe('file')
    expect([stream.config.max_bytes, stream.config.max_msgs, stream.config.max_age, stream.config.discard]).toEqual([
      64 * 1024 * 1024,
      5000,
      3_600_000 * 1_000_000,
      'old',
    ])
    const consumer = await jsm.consumers.info(config.stream, config.consumer)
    expect([consumer.config.durable_name, consumer.config.ack_policy, consumer.config.filter_subject]).toEqual([
      config.consumer,
      'explicit',
      config.subject,
    ])

    // A second instance shares the consumer; the stream's own settings stay.
    await jsm.streams.update(config.stream, { ...stream.config, max_msgs: 12_345 })
    await busApp(config)
    expect((await jsm.streams.info(config.stream)).config.max_msgs).toBe(12_345)
    const consumers: string[] = []
    for await (const c of jsm.consumers.list(config.stream)) consumers.push(c.name)
    expect(consumers).toEqual([config.consumer])
  })

  it('uses a stream without limits that someone else created as it is, warning that it keeps every message', async () => {
    const config = busConfig()
    const { jsm } = await natsClient()
    await jsm.streams.add({ name: config.stream, subjects: [config.subject] })
    const { logs } = await busApp(config)
    const stream = await jsm.streams.info(config.stream)
    expect([stream.config.max_bytes, stream.config.max_msgs, stream.config.max_age]).toEqual([-1, -1, 0])
    expect(logs.join('')).toContain('the event bus stream keeps every message forever')
  })

  it.skipIf(!existsSync(NATS_SERVER))(
    'reconnects and goes on consuming when the NATS server restarts',
    async () => {
      const port = await freePort()
      const storeDir = mkdtempSync(join(tmpdir(), 'kit-nats-'))
      cleanups.push(async () => rmSync(storeDir, { recursive: true, force: true }))
      let server = await startNats(port, storeDir)
      cleanups.push(() => stopNats(server))
      const url = `nats://127.0.0.1:${port}`
      const config = busConfig(url)
      const { app, secret, logs } = await busApp(config, FAST)
      const { nc } = await natsClient(url)

      await publishSigned(nc, config, secret, makeEvent())
      await waitFor(() => storedEvents(app) === 1, { what: 'the first event' })

      await stopNats(server)
      server = await startNats(port, storeDir)
      // The publisher reconnects too, and JetStream needs a moment to load its stream again.
      const event = makeEvent()
      await waitForAsync(
        () =>
          publishSigned(nc, config, secret, event).then(
            () => true,
            () => false,
          ),
        'publishing after the restart',
        20_000,
      )
      await waitFor(() => storedEvents(app) === 2, { what: 'the event published after the restart', timeoutMs: 20_000 })
      expect(logs.join('')).toContain('reconnected to the event bus')
    },
    40_000,
  )

  it.skipIf(!existsSync(NATS_SERVER))('signs in to NATS with the user and password given in EVENT_BUS_URL', async () => {
    const port = await freePort()
    const storeDir = mkdtempSync(join(tmpdir(), 'kit-nats-'))
    cleanups.push(async () => rmSync(storeDir, { recursive: true, force: true }))
    const server = await startNats(port, storeDir, ['--user', 'kit', '--pass', 'bus-pass-1234'])
    cleanups.push(() => stopNats(server))
    const fromEnv = loadConfig({ DATABASE_PATH: tempDb(), EVENT_BUS_URL: `nats://kit:bus-pass-1234@127.0.0.1:${port}` }).config.eventBus
    expect(fromEnv?.auth).toEqual({ user: 'kit', pass: 'bus-pass-1234' })
    const config = { ...busConfig(), servers: fromEnv?.servers ?? [], auth: fromEnv?.auth ?? null }
    const { app, secret, logs } = await busApp(config)
    const nc = await connect({ servers: [`nats://127.0.0.1:${port}`], user: 'kit', pass: 'bus-pass-1234' })
    natsConnections.push(nc)
    await publishSigned(nc, config, secret, makeEvent())
    await waitFor(() => storedEvents(app) === 1, { what: 'the event' })
    expect(logs.join('')).not.toContain('bus-pass-1234')
  })
})

async function startNats(port: number, storeDir: string, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...extra], { stdio: 'ignore' })
  await waitForAsync(() => reachable(port), `nats-server on port ${port}`, 10_000)
  return child
}

async function stopNats(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}
