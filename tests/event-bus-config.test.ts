/** EVENT_BUS_* settings; these need no NATS server. */
import { describe, expect, it } from 'vitest'
import { DEFAULT_STREAM_LIMITS, loadConfig } from '../server/config.ts'
import { nakDelayMs, redactedServers } from '../server/pipeline/event-bus.ts'
import { randomBytes } from 'node:crypto'
import { buildTestApp } from './helpers/app.ts'
import { problemsOf, tempDb } from './helpers/config.ts'
import { makeEvent, postEvent, waitFor } from './helpers/events.ts'
import { freePort } from './helpers/server-process.ts'

const busProblems = (env: Record<string, string>) => problemsOf({ DATABASE_PATH: tempDb(), ...env }).join(' ')

describe('event bus configuration', () => {
  it('leaves the event bus off unless EVENT_BUS_URL is set', async () => {
    expect(loadConfig({ DATABASE_PATH: tempDb() }).config.eventBus).toBeNull()
    const { app } = await buildTestApp()
    expect(app.eventBus).toBeNull()
    await app.close()
  })

  it('uses the default subject, stream and consumer with EVENT_BUS_URL alone', () => {
    expect(loadConfig({ DATABASE_PATH: tempDb(), EVENT_BUS_URL: 'nats://127.0.0.1:4222' }).config.eventBus).toEqual({
      servers: ['nats://127.0.0.1:4222'],
      auth: null,
      subject: 'appstation.members.>',
      stream: 'APPSTATION_MEMBERS',
      consumer: 'kit-plugin',
      streamLimits: { maxBytes: 1024 ** 3, maxMsgs: 1_000_000, maxAgeMs: 7 * 24 * 3600 * 1000 },
    })
  })

  it('reads several servers, tls:// included, and the subject, stream and consumer', () => {
    const env = {
      DATABASE_PATH: tempDb(),
      EVENT_BUS_URL: 'tls://nats-a.internal:4222, tls://nats-b.internal:4222',
      EVENT_BUS_SUBJECT: 'platform.*.members.>',
      EVENT_BUS_STREAM: 'MEMBERS',
      EVENT_BUS_CONSUMER: 'kit_prod',
    }
    expect(loadConfig(env).config.eventBus).toEqual({
      servers: ['tls://nats-a.internal:4222', 'tls://nats-b.internal:4222'],
      auth: null,
      subject: 'platform.*.members.>',
      stream: 'MEMBERS',
      consumer: 'kit_prod',
      streamLimits: { maxBytes: 1024 ** 3, maxMsgs: 1_000_000, maxAgeMs: 7 * 24 * 3600 * 1000 },
    })
  })

  it('reads the limits of a stream it creates, and refuses ones too small to hold a backlog', () => {
    const env = {
      DATABASE_PATH: tempDb(),
      EVENT_BUS_URL: 'nats://127.0.0.1:4222',
      EVENT_BUS_STREAM_MAX_BYTES: '268435456',
      EVENT_BUS_STREAM_MAX_MSGS: '250000',
      EVENT_BUS_STREAM_MAX_AGE_S: '86400',
    }
    expect(loadConfig(env).config.eventBus?.streamLimits).toEqual({ maxBytes: 268_435_456, maxMsgs: 250_000, maxAgeMs: 86_400_000 })
    const problems = problemsOf({
      DATABASE_PATH: tempDb(),
      EVENT_BUS_URL: 'nats://127.0.0.1:4222',
      EVENT_BUS_STREAM_MAX_BYTES: '1000',
      EVENT_BUS_STREAM_MAX_MSGS: 'lots',
      EVENT_BUS_STREAM_MAX_AGE_S: '0',
    })
    expect(problems).toEqual([
      'EVENT_BUS_STREAM_MAX_BYTES must be an integer ≥ 1048576',
      'EVENT_BUS_STREAM_MAX_MSGS must be an integer ≥ 1000',
      'EVENT_BUS_STREAM_MAX_AGE_S must be an integer ≥ 60',
    ])
  })

  it('refuses an EVENT_BUS_URL that is not nats:// or tls://', () => {
    for (const url of ['http://127.0.0.1:4222', '127.0.0.1:4222', 'nats://', 'nats://a:4222,https://b']) {
      expect(busProblems({ EVENT_BUS_URL: url })).toMatch(/EVENT_BUS_URL must be one or more comma-separated nats:\/\/ or tls:\/\/ URLs/)
    }
  })

  it('refuses a subject with misplaced wildcards and stream or consumer names NATS cannot hold', () => {
    const url = 'nats://127.0.0.1:4222'
    for (const subject of ['appstation.>.members', 'app station.members', 'appstation..members', 'appstation.mem*']) {
      expect(busProblems({ EVENT_BUS_URL: url, EVENT_BUS_SUBJECT: subject })).toMatch(/EVENT_BUS_SUBJECT must be a NATS subject/)
    }
    expect(busProblems({ EVENT_BUS_URL: url, EVENT_BUS_STREAM: 'APP.MEMBERS' })).toMatch(/EVENT_BUS_STREAM must be 1 to 64 letters/)
    expect(busProblems({ EVENT_BUS_URL: url, EVENT_BUS_CONSUMER: 'kit plugin' })).toMatch(/EVENT_BUS_CONSUMER must be 1 to 64 letters/)
  })

  it('takes a user and password, or a token, out of EVENT_BUS_URL', () => {
    const bus = (url: string) => loadConfig({ DATABASE_PATH: tempDb(), EVENT_BUS_URL: url }).config.eventBus
    expect(bus('tls://kit:p%40ss@nats.internal:4222')).toMatchObject({
      servers: ['tls://nats.internal:4222'],
      auth: { user: 'kit', pass: 'p@ss' },
    })
    expect(bus('nats://s3cret-token@127.0.0.1:4222')).toMatchObject({ servers: ['nats://127.0.0.1:4222'], auth: { token: 's3cret-token' } })
  })

  it('logs the servers without the user and password they may carry', () => {
    expect(redactedServers(['nats://kit:s3cret@nats.internal:4222', 'tls://token@10.0.0.2:4443'])).toEqual([
      'nats://nats.internal:4222',
      'tls://10.0.0.2:4443',
    ])
  })

  it('naks a message that could not be stored with a delay doubling per delivery, up to the maximum', () => {
    const tuning = { nakBaseMs: 1000, nakMaxMs: 60_000 }
    expect([1, 2, 3, 4, 7, 8, 1000].map((n) => nakDelayMs(n, tuning))).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000])
  })

  it('serves HTTP intake while the event bus cannot be reached, keeps trying, and still closes', async () => {
    const secret = randomBytes(32).toString('base64')
    const port = await freePort()
    const eventBus = {
      servers: [`nats://127.0.0.1:${port}`],
      auth: null,
      subject: 'appstation.members.>',
      stream: 'APPSTATION_MEMBERS',
      consumer: 'kit-plugin',
      streamLimits: DEFAULT_STREAM_LIMITS,
    }
    const { app, logs } = await buildTestApp({ eventsSecrets: [secret], eventBus }, {}, { retryMs: 20 })
    expect((await postEvent(app, secret, makeEvent())).statusCode).toBe(202)
    await waitFor(() => logs.filter((l) => l.includes('the event bus is not usable')).length >= 2, { what: 'two failed attempts logged' })
    await app.close()
  })
})
