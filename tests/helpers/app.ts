import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../server/app.ts'
import type { Config } from '../../server/config.ts'
import type { EventBusOptions } from '../../server/plugins/event-bus.ts'
import type { PipelineOptions } from '../../server/plugins/pipeline.ts'

export const TEST_JWT_SECRET = 'test-jwt-secret-that-is-at-least-32-bytes-long'
export const TEST_ISSUER = 'https://appstation.test'
export const TEST_ORIGIN = 'https://appstation.test'
export const TEST_PLUGIN_ID = 'kit'

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    production: false,
    devHost: false,
    host: '127.0.0.1',
    port: 0,
    databasePath: ':memory:',
    databaseUrl: null,
    databasePoolSize: 10,
    kitApiUrl: 'http://127.0.0.1:9',
    issuer: TEST_ISSUER,
    origin: TEST_ORIGIN,
    pluginId: TEST_PLUGIN_ID,
    jwtSecret: TEST_JWT_SECRET,
    eventsSecrets: [randomBytes(32).toString('base64')],
    encryptionKeys: [{ id: 'test', key: randomBytes(32) }],
    kitRateLimit: 120,
    kitRateWindowMs: 60_000,
    kitOAuthRateLimit: 600,
    kitOAuthRateWindowMs: 60_000,
    kitOAuth: null,
    deliveryLeaseMs: null,
    sessionMaxLifetimeS: 600,
    metricsToken: null,
    apiRateLimit: 120,
    kitCheckRateLimit: 10,
    sessionFailureLimit: 60,
    eventsRateLimit: 60_000,
    requestTimeoutMs: 30_000,
    connectionTimeoutMs: 120_000,
    keepAliveTimeoutMs: 10_000,
    retentionDays: 30,
    syncMaxBytes: 64 * 1024 * 1024,
    syncMaxRows: 100_000,
    syncUpload: { minBytes: 16 * 1024, windowMs: 10_000, stallMs: 30_000 },
    eventBus: null,
    logLevel: 'info',
    platformEvents: null,
    publicUrl: null,
    kitPollIntervalS: 300,
    ...overrides,
  }
}

export interface TestApp {
  app: FastifyInstance
  config: Config
  /** Every log line the app wrote, raw. */
  logs: string[]
}

/** The real app on a fresh migrated in-memory database, with its log captured. */
export async function buildTestApp(
  overrides: Partial<Config> = {},
  pipeline: PipelineOptions = {},
  eventBus: EventBusOptions = {},
): Promise<TestApp> {
  const config = testConfig(overrides)
  const logs: string[] = []
  const logStream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'))
      done()
    },
  })
  const app = await buildApp({ config, logStream, pipeline, eventBus })
  await app.ready()
  return { app, config, logs }
}
