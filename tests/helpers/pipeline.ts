/**
 * The one harness of the server tests: the real app wired to the Kit stand-in over real HTTP,
 * with the verbs tests share: connect a community, change its mappings, send signed events,
 * wait for deliveries to settle, read what Kit holds. Each harness has its own stand-in and
 * database (SQLite in memory unless told otherwise, or a fresh PostgreSQL one); `close()` stops
 * and removes everything it started.
 */
import { randomBytes } from 'node:crypto'
import { expect } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../server/config.ts'
import type { PipelineOptions } from '../../server/plugins/pipeline.ts'
import { startKitStandin, type KitStandin, type StandinOptions } from '../kit-standin/server.ts'
import { buildTestApp } from './app.ts'
import { createTestDatabase, type TestDatabase } from './postgres.ts'
import { makeEvent, postEvent, waitFor, type EventInput } from './events.ts'
import { sessionFor } from './tokens.ts'

export const KEY = 'kit_pipeline_key_0001'
export const KEY_B = 'kit_pipeline_key_0002'
/** Owners of community A and B; each request signs a fresh token. */
export const asA = sessionFor('c_alpha')
export const asB = sessionFor('c_bravo')

/** Short retries so tests run in seconds; the list-lag window stays longer than the stand-in's lag. */
export const FAST_RETRY: PipelineOptions['retry'] = {
  baseMs: 30,
  maxMs: 100,
  rateLimitWaitMs: 300,
  listLagWindowMs: 600,
  listLagRetryMs: 100,
}

export interface DeliveryRow {
  id: string
  status: string
  last_error: string | null
  reason: string | null
  kit_requests: number
  attempts: number
  steps: string
  updated_at: string
}

export interface HarnessOptions {
  kit?: StandinOptions
  config?: Partial<Config>
  pipeline?: PipelineOptions
  /** Connects community A to KEY once the app is up. */
  connected?: boolean
  /** A fresh PostgreSQL database (named with this prefix) instead of SQLite; dropped on close. */
  postgres?: string
  /** Instances of the app started together on the one database and stand-in (PostgreSQL). */
  instances?: number
}

export class PipelineHarness {
  /** The first instance; the only one unless `instances` or `addInstance` made more. */
  app!: FastifyInstance
  /** Every instance running, the first one first. */
  apps: FastifyInstance[] = []
  /** Every log line the first instance wrote, raw. */
  logs: string[] = []
  private database: TestDatabase | null = null
  readonly secret = randomBytes(32).toString('base64')
  /** Fixed per harness, so a restarted app on the same database file still reads the saved key. */
  private readonly encryptionKeys: Config['encryptionKeys'] = [{ id: 'test', key: randomBytes(32) }]

  private constructor(
    readonly kit: KitStandin,
    private options: HarnessOptions,
  ) {}

  static async start(options: HarnessOptions = {}): Promise<PipelineHarness> {
    const kit = await startKitStandin({ apiKeys: [KEY, KEY_B], ...options.kit })
    const harness = new PipelineHarness(kit, options)
    try {
      if (options.postgres) harness.database = await createTestDatabase(options.postgres)
      await harness.boot()
      if (options.connected) await harness.connect()
    } catch (err) {
      await harness.close()
      throw err
    }
    return harness
  }

  private build() {
    return buildTestApp(
      {
        kitApiUrl: this.kit.url,
        eventsSecrets: [this.secret],
        encryptionKeys: this.encryptionKeys,
        ...(this.database ? { databaseUrl: this.database.url, databasePoolSize: 3 } : {}),
        ...this.options.config,
      },
      { retry: FAST_RETRY, ...this.options.pipeline },
    )
  }

  private async boot(): Promise<void> {
    // Started together: on PostgreSQL the first applies the migrations, the others wait for it.
    const built = await Promise.all(Array.from({ length: this.options.instances ?? 1 }, () => this.build()))
    this.apps = built.map((b) => b.app)
    ;({ app: this.app, logs: this.logs } = built[0]!)
  }

  /** One more instance on the same database and stand-in. */
  async addInstance(): Promise<FastifyInstance> {
    const { app } = await this.build()
    this.apps.push(app)
    return app
  }

  /** Stops one instance; the others keep running. */
  async stopInstance(app: FastifyInstance): Promise<void> {
    this.apps.splice(this.apps.indexOf(app), 1)
    await app.close()
  }

  /** The PostgreSQL database's address, when the harness has one. */
  get databaseUrl(): string | null {
    return this.database?.url ?? null
  }

  /**
   * Stops the app and starts it again on the same database (a fresh process's caches), with
   * `config` changed from then on (another ENCRYPTION_KEY, say).
   */
  async restart(config: Partial<Config> = {}): Promise<void> {
    await Promise.all(this.apps.splice(0).map((a) => a.close()))
    this.options = { ...this.options, config: { ...this.options.config, ...config } }
    await this.boot()
  }

  /** Stops every instance and the stand-in, and drops the PostgreSQL database if there is one. */
  async close(): Promise<void> {
    await Promise.all(this.apps.splice(0).map((a) => a.close()))
    await this.kit.close()
    await this.database?.drop()
    this.database = null
  }

  /** Saves a Kit key for the community of `headers`; answers the response, whatever it is. */
  putConnection(headers: Record<string, string>, apiKey: string) {
    return this.app.inject({ method: 'PUT', url: '/api/v1/connection', headers, payload: { api_key: apiKey } })
  }

  /** Connects the community of `headers` to `apiKey` and expects it saved. */
  async connect(headers: Record<string, string> = asA, apiKey = KEY): Promise<void> {
    expect((await this.putConnection(headers, apiKey)).statusCode).toBe(200)
  }

  /**
   * Connects the community of `headers` with Kit by OAuth, as the popup does: the authorization
   * starts, the stand-in's consent page approves, and the callback is opened with its answer.
   */
  async connectWithKit(headers: Record<string, string> = asA, app: FastifyInstance = this.app): Promise<void> {
    const start = await app.inject({ method: 'POST', url: '/api/v1/connection/oauth/start', headers, payload: {} })
    expect(start.statusCode, start.body).toBe(200)
    const atKit = await fetch((start.json() as { authorize_url: string }).authorize_url, { redirect: 'manual' })
    expect(atKit.status).toBe(302)
    const back = new URL(atKit.headers.get('location') as string)
    const page = await app.inject({ method: 'GET', url: `${back.pathname}${back.search}` })
    expect(page.statusCode, page.body).toBe(200)
  }

  async putMappings(change: (doc: any) => void, headers = asA): Promise<void> {
    const doc = (await this.app.inject({ method: 'GET', url: '/api/v1/mappings', headers })).json()
    change(doc)
    const res = await this.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers, payload: doc })
    expect(res.statusCode).toBe(200)
  }

  /** Sends a new event (see `makeEvent`), expects it accepted and answers its id. */
  async send(input: EventInput): Promise<string> {
    const event = makeEvent(input)
    const res = await this.post(event)
    expect(res.statusCode).toBe(202)
    return event.id as string
  }

  /** Posts an event as it is, signed with this harness's secret; answers the response. */
  post(event: Record<string, unknown>) {
    return postEvent(this.app, this.secret, event)
  }

  delivery(eventId: string): DeliveryRow | undefined {
    return this.app.sqlite.prepare('SELECT * FROM deliveries WHERE event_id = ?').get(eventId) as DeliveryRow | undefined
  }

  settled(eventId: string, { statuses = ['succeeded', 'skipped', 'failed'], timeoutMs = 10_000 } = {}): Promise<DeliveryRow> {
    return waitFor(
      () => {
        const d = this.delivery(eventId)
        return d && statuses.includes(d.status) ? d : undefined
      },
      { what: `delivery of ${eventId}`, timeoutMs },
    )
  }

  subscriber(email: string, key = KEY) {
    return this.kit.account(key).subscribers.find((s) => s.email_address === email)
  }

  tagNames(email: string, key = KEY): string[] {
    const s = this.subscriber(email, key)
    const tags = this.kit.account(key).tags
    return s ? [...s.tags].map((id) => tags.find((t) => t.id === id)?.name ?? `#${id}`).sort() : []
  }

  tag(name: string, key = KEY) {
    const found = this.kit.account(key).tags.find((t) => t.name === name)
    if (!found) throw new Error(`no tag "${name}" at the stand-in`)
    return found
  }

  /** Kit calls since request number `from`, as `METHOD /path/:id STATUS`. */
  callsSince(from: number): string[] {
    return this.kit.requests.slice(from).map((r) => `${r.method} ${r.path.replace(/\/\d+/g, '/:id')} ${r.status}`)
  }
}
