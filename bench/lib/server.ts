/** The real plugin server as its own process: `node --import tsx server/main.ts` with a chosen environment. */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { freePort, sleep, type Secrets } from './env.ts'
import { spawnTs, type Child } from './processes.ts'

export interface ServerOptions {
  dir: string
  secrets: Secrets
  kitUrl: string
  /** Same port on every restart of one drill; a free one when absent. */
  port?: number
  rateLimit?: number
  rateWindowMs?: number
  /** Where events to the platform go (PLATFORM_EVENTS_URL and _SECRET); none are stored or sent when absent. */
  platformEvents?: { url: string; secret: string }
  /** KIT_POLL_INTERVAL_S: how often the server asks Kit what changed (default 300). */
  kitPollIntervalS?: number
  /**
   * Serve /dev/ (the local App Station page, KIT_DEV_HOST=1); default false (production). The
   * dev host runs only with secrets it generated itself, so `secrets` are not used then: the
   * server generates its own into `dir/secrets.json`.
   */
  development?: boolean
  /** Further settings, applied last (e.g. DATABASE_URL, EVENT_BUS_URL for several instances). */
  env?: Record<string, string>
  /** How long to wait for /readyz (default 30 s; instances migrating one database at once take longer). */
  readyTimeoutMs?: number
}

export interface ServerHandle {
  url: string
  port: number
  pid: number
  databasePath: string
  process: Child
  /** SIGKILL or SIGTERM, then wait for the exit. */
  kill: (signal: NodeJS.Signals) => Promise<void>
}

/**
 * EVENTS_RATE_LIMIT for the capacity benchmarks: they load the intake from one address at the
 * server's full speed (thousands of events a second), far beyond what one platform source sends
 * normally and so beyond the default 60,000 a minute; the limiter still runs, above that rate.
 */
export const CAPACITY_EVENTS_RATE_LIMIT = { EVENTS_RATE_LIMIT: String(100_000_000) }

/** The operators' token every production server started here requires for /metrics. */
export const METRICS_TOKEN = randomBytes(24).toString('hex')

export async function startServer(options: ServerOptions): Promise<ServerHandle> {
  const port = options.port ?? (await freePort())
  const url = `http://127.0.0.1:${port}`
  const databasePath = join(options.dir, 'kit.sqlite')
  const { NODE_ENV: _inherited, APPSTATION_JWT_SECRET: _jwt, EVENTS_SECRET: _events, ENCRYPTION_KEY: _key, ...inherited } = process.env
  const secrets = {
    APPSTATION_JWT_SECRET: options.secrets.jwtSecret,
    EVENTS_SECRET: `whsec_${options.secrets.hmacKey}`,
    ENCRYPTION_KEY: options.secrets.encryptionKey,
  }
  const env: Record<string, string | undefined> = {
    ...inherited,
    ...(options.development ? { KIT_DEV_HOST: '1' } : { NODE_ENV: 'production', ...secrets, METRICS_TOKEN }),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_PATH: databasePath,
    KIT_API_URL: options.kitUrl,
    APPSTATION_ISSUER: url,
    PLUGIN_ID: 'kit',
    KIT_RATE_LIMIT: String(options.rateLimit ?? 120),
    KIT_RATE_WINDOW_MS: String(options.rateWindowMs ?? 60_000),
    ...(options.platformEvents
      ? { PLATFORM_EVENTS_URL: options.platformEvents.url, PLATFORM_EVENTS_SECRET: options.platformEvents.secret }
      : {}),
    ...(options.kitPollIntervalS === undefined ? {} : { KIT_POLL_INTERVAL_S: String(options.kitPollIntervalS) }),
    LOG_LEVEL: 'warn',
    ...options.env,
  }
  const child = spawnTs('server/main.ts', env)
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000
  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (child.child.exitCode !== null) throw new Error(`the server exited early:\n${child.output()}`)
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.ok,
      () => false,
    )
    if (ready) break
    if (Date.now() > deadline) {
      await child.kill('SIGKILL')
      throw new Error(`the server did not become ready within ${readyTimeoutMs / 1000} s:\n${child.output()}`)
    }
    await sleep(100)
  }
  return { url, port, pid: child.pid, databasePath, process: child, kill: child.kill }
}
