/**
 * Configuration from the environment, read through the declaration in config-schema.ts (types,
 * defaults, limits, messages), then checked across variables here. Development gets defaults that
 * just work: missing secrets are generated once and kept beside the database (mode 0600), marked as
 * generated there. Production (NODE_ENV `production` or `prod`, any case: the rule `npm start` uses
 * too) refuses to start and names every secret that is missing or malformed, and METRICS_TOKEN if
 * unset. The local App Station (KIT_DEV_HOST=1) is refused unless it is safe: development,
 * loopback, and only secrets generated here.
 */
import { chmodSync, lstatSync, mkdirSync, readFileSync, writeFileSync, type Stats } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { KeyRing } from './lib/crypto.ts'
import {
  isGeneratedHere,
  isProduction,
  SECRET_NAMES,
  withGeneratedSecrets,
  type SecretName,
  type StoredSecrets,
} from './lib/environment.mjs'
import {
  decodeWebhookSecrets,
  isLoopbackHost,
  ORIGIN,
  parseBusUrl,
  parseEncryptionKeys,
  readEnv,
  VARIABLES,
  accepts,
  type BusAuth,
  type Env,
  type RawEnv,
} from './config-schema.ts'

export { decodeWebhookSecret, isLoopbackHost, parseEncryptionKeys } from './config-schema.ts'

/** The settings, each field from the variable named beside it (its meaning is declared there). */
export interface Config {
  production: boolean
  /** KIT_DEV_HOST=1: serve the local App Station (/dev/), which mints session tokens. */
  devHost: boolean
  host: Env['HOST']
  port: Env['PORT']
  databasePath: Env['DATABASE_PATH']
  /** DATABASE_URL: several instances share this PostgreSQL database instead of the SQLite file. */
  databaseUrl: string | null
  databasePoolSize: Env['DATABASE_POOL_SIZE']
  /** KIT_API_URL without trailing slashes. */
  kitApiUrl: string
  /** APPSTATION_ISSUER, by default this server's own origin. */
  issuer: string
  /** APPSTATION_ORIGIN, by default the issuer. */
  origin: string
  pluginId: Env['PLUGIN_ID']
  jwtSecret: string
  /** HMAC keys decoded from every `whsec_` entry of EVENTS_SECRET, newest first as given. */
  eventsSecrets: string[]
  /** Every key of ENCRYPTION_KEY, newest (used for every write) first. */
  encryptionKeys: KeyRing
  /** Kit's request budget for an API key (KIT_RATE_LIMIT, KIT_RATE_WINDOW_MS). */
  kitRateLimit: Env['KIT_RATE_LIMIT']
  kitRateWindowMs: Env['KIT_RATE_WINDOW_MS']
  /** Kit's request budget for an OAuth connection (KIT_OAUTH_RATE_LIMIT, KIT_OAUTH_RATE_WINDOW_MS). */
  kitOAuthRateLimit: Env['KIT_OAUTH_RATE_LIMIT']
  kitOAuthRateWindowMs: Env['KIT_OAUTH_RATE_WINDOW_MS']
  /** KIT_OAUTH_CLIENT_ID and KIT_OAUTH_CLIENT_SECRET, both set, and PUBLIC_URL: *Connect with Kit* is offered; null: it is not. */
  kitOAuth: KitOAuthConfig | null
  /** DELIVERY_LEASE_MS; null: 120 s embedded, 30 s on PostgreSQL. */
  deliveryLeaseMs: number | null
  sessionMaxLifetimeS: Env['SESSION_MAX_LIFETIME_S']
  apiRateLimit: Env['API_RATE_LIMIT']
  kitCheckRateLimit: Env['KIT_CHECK_RATE_LIMIT']
  sessionFailureLimit: Env['SESSION_FAILURE_LIMIT']
  eventsRateLimit: Env['EVENTS_RATE_LIMIT']
  /** METRICS_TOKEN: when set, /metrics and /docs/openapi.json require `Authorization: Bearer <token>`. */
  metricsToken: string | null
  requestTimeoutMs: Env['HTTP_REQUEST_TIMEOUT_MS']
  connectionTimeoutMs: Env['HTTP_IDLE_TIMEOUT_MS']
  keepAliveTimeoutMs: Env['HTTP_KEEP_ALIVE_TIMEOUT_MS']
  retentionDays: Env['RETENTION_DAYS']
  syncMaxBytes: Env['SYNC_MAX_BYTES']
  syncMaxRows: Env['SYNC_MAX_ROWS']
  syncUpload: SyncUploadPace
  /** EVENT_BUS_URL set: member events are also consumed from a JetStream stream. */
  eventBus: EventBusConfig | null
  logLevel: Env['LOG_LEVEL']
  /** PLATFORM_EVENTS_URL and PLATFORM_EVENTS_SECRET, both set: events to the platform are sent; null: none are. */
  platformEvents: PlatformEventsConfig | null
  /** PUBLIC_URL without trailing slashes. */
  publicUrl: string | null
  kitPollIntervalS: Env['KIT_POLL_INTERVAL_S']
}

/** A Kit app's OAuth client, and where Kit sends the owner back (PUBLIC_URL/oauth/kit/callback). */
export interface KitOAuthConfig {
  clientId: string
  /** Never logged, never sent anywhere but Kit's token and revoke endpoints. */
  clientSecret: string
  redirectUri: string
}

export interface PlatformEventsConfig {
  url: string
  /** The `whsec_` secret as given: it signs every event. */
  secret: string
}

/**
 * A member-file upload is never cut off while at least `minBytes` arrive in every `windowMs`,
 * however long it takes; one that sends nothing for `stallMs` is closed (408). It has no other
 * deadline: HTTP_REQUEST_TIMEOUT_MS applies to every other request.
 */
export interface SyncUploadPace {
  minBytes: Env['SYNC_UPLOAD_MIN_BYTES']
  windowMs: Env['SYNC_UPLOAD_WINDOW_MS']
  stallMs: Env['SYNC_UPLOAD_STALL_MS']
}

export interface EventBusConfig {
  /** The NATS servers (`nats://` or `tls://`) from EVENT_BUS_URL, without credentials. */
  servers: string[]
  /** From `user:password@` (or a lone `token@`) in EVENT_BUS_URL; never logged. */
  auth: BusAuth
  subject: Env['EVENT_BUS_SUBJECT']
  stream: Env['EVENT_BUS_STREAM']
  consumer: Env['EVENT_BUS_CONSUMER']
  /** Limits of the stream when the plugin creates it (an existing stream is used as it is). */
  streamLimits: StreamLimits
}

/** EVENT_BUS_STREAM_MAX_BYTES, EVENT_BUS_STREAM_MAX_MSGS and EVENT_BUS_STREAM_MAX_AGE_S (in milliseconds here). */
export interface StreamLimits {
  maxBytes: number
  maxMsgs: number
  maxAgeMs: number
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxBytes: VARIABLES.EVENT_BUS_STREAM_MAX_BYTES.default,
  maxMsgs: VARIABLES.EVENT_BUS_STREAM_MAX_MSGS.default,
  maxAgeMs: VARIABLES.EVENT_BUS_STREAM_MAX_AGE_S.default * 1000,
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Refusing to start: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}

export interface LoadedConfig {
  config: Config
  /** Things worth a log line once a logger exists (e.g. "generated secrets in …"). */
  notes: string[]
}

/**
 * Reads configuration. In development, secrets that are not set are read from (or generated into)
 * `secrets.json` beside the database file; `:memory:` databases keep them under `./data/`.
 */
export function loadConfig(raw: RawEnv = process.env): LoadedConfig {
  const production = isProduction(raw.NODE_ENV)
  const { env, problems } = readEnv(raw, production)
  const devHost = env.KIT_DEV_HOST === '1'
  const issuer = env.APPSTATION_ISSUER ?? `http://${env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST}:${env.PORT}`
  const kitApiUrl = env.KIT_API_URL.replace(/\/+$/, '')
  problems.push(
    ...originProblems(env, issuer),
    ...kitApiUrlProblems(kitApiUrl, production),
    ...(devHost ? devHostProblems(raw, env.HOST) : []),
    ...uploadPaceProblems(env),
    ...platformEventsProblems(raw, env),
    ...kitOAuthProblems(raw, env),
  )
  const notes: string[] = []
  const publicUrl = env.PUBLIC_URL?.replace(/\/+$/, '') ?? null
  const kitOAuth = kitOAuthOf(env, publicUrl, notes)
  const secrets = production ? env : developmentSecrets(raw, env, devHost, problems, notes)
  if (problems.length > 0) throw new ConfigError(problems)

  const bus = env.EVENT_BUS_URL === undefined ? null : parseBusUrl(env.EVENT_BUS_URL)
  return {
    notes,
    config: {
      production,
      devHost,
      host: env.HOST,
      port: env.PORT,
      databasePath: env.DATABASE_PATH,
      databaseUrl: env.DATABASE_URL ?? null,
      databasePoolSize: env.DATABASE_POOL_SIZE,
      kitApiUrl,
      issuer,
      origin: env.APPSTATION_ORIGIN ?? issuer,
      pluginId: env.PLUGIN_ID,
      jwtSecret: secrets.APPSTATION_JWT_SECRET as string,
      eventsSecrets: decodeWebhookSecrets(secrets.EVENTS_SECRET as string) as string[],
      encryptionKeys: parseEncryptionKeys(secrets.ENCRYPTION_KEY as string) as KeyRing,
      kitRateLimit: env.KIT_RATE_LIMIT,
      kitRateWindowMs: env.KIT_RATE_WINDOW_MS,
      kitOAuthRateLimit: env.KIT_OAUTH_RATE_LIMIT,
      kitOAuthRateWindowMs: env.KIT_OAUTH_RATE_WINDOW_MS,
      kitOAuth,
      deliveryLeaseMs: env.DELIVERY_LEASE_MS ?? null,
      sessionMaxLifetimeS: env.SESSION_MAX_LIFETIME_S,
      metricsToken: env.METRICS_TOKEN ?? null,
      apiRateLimit: env.API_RATE_LIMIT,
      kitCheckRateLimit: env.KIT_CHECK_RATE_LIMIT,
      sessionFailureLimit: env.SESSION_FAILURE_LIMIT,
      eventsRateLimit: env.EVENTS_RATE_LIMIT,
      requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
      connectionTimeoutMs: env.HTTP_IDLE_TIMEOUT_MS,
      keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      retentionDays: env.RETENTION_DAYS,
      syncMaxBytes: env.SYNC_MAX_BYTES,
      syncMaxRows: env.SYNC_MAX_ROWS,
      syncUpload: { minBytes: env.SYNC_UPLOAD_MIN_BYTES, windowMs: env.SYNC_UPLOAD_WINDOW_MS, stallMs: env.SYNC_UPLOAD_STALL_MS },
      eventBus: bus && {
        ...bus,
        subject: env.EVENT_BUS_SUBJECT,
        stream: env.EVENT_BUS_STREAM,
        consumer: env.EVENT_BUS_CONSUMER,
        streamLimits: {
          maxBytes: env.EVENT_BUS_STREAM_MAX_BYTES,
          maxMsgs: env.EVENT_BUS_STREAM_MAX_MSGS,
          maxAgeMs: env.EVENT_BUS_STREAM_MAX_AGE_S * 1000,
        },
      },
      logLevel: env.LOG_LEVEL,
      platformEvents:
        env.PLATFORM_EVENTS_URL && env.PLATFORM_EVENTS_SECRET ? { url: env.PLATFORM_EVENTS_URL, secret: env.PLATFORM_EVENTS_SECRET } : null,
      publicUrl,
      kitPollIntervalS: env.KIT_POLL_INTERVAL_S,
    },
  }
}

/** APPSTATION_ORIGIN defaults to the issuer, which must then be an origin too. */
function originProblems(env: Env, issuer: string): string[] {
  if (env.APPSTATION_ORIGIN !== undefined || ORIGIN.test(issuer)) return []
  return [
    `APPSTATION_ORIGIN must be set to an origin such as https://appstation.example (scheme and host, no path): it defaults to the issuer, ${issuer}, which is not one`,
  ]
}

/** Plain http to Kit only stays on the machine (loopback) in production. */
function kitApiUrlProblems(url: string, production: boolean): string[] {
  const { protocol, hostname } = new URL(url)
  if (!production || protocol === 'https:' || isLoopbackHost(hostname)) return []
  return ['KIT_API_URL must be an https: URL in production (plain http is allowed only for loopback hosts: 127.0.0.0/8, ::1, localhost)']
}

/** The stall time of an upload is at least the window its pace is measured over. */
function uploadPaceProblems(env: Env): string[] {
  return env.SYNC_UPLOAD_STALL_MS < env.SYNC_UPLOAD_WINDOW_MS ? ['SYNC_UPLOAD_STALL_MS must be at least SYNC_UPLOAD_WINDOW_MS'] : []
}

/** The platform's address and its signing secret go together: one without the other is a mistake. */
function platformEventsProblems(raw: RawEnv, env: Env): string[] {
  // A malformed one is named by itself (readEnv), not also as the other's missing partner.
  const given = (name: string) => Boolean(raw[name]?.trim())
  if (env.PLATFORM_EVENTS_URL !== undefined && !given('PLATFORM_EVENTS_SECRET')) {
    return ['PLATFORM_EVENTS_SECRET must be set too: PLATFORM_EVENTS_URL is set, and events to the platform are signed with it']
  }
  if (env.PLATFORM_EVENTS_SECRET !== undefined && !given('PLATFORM_EVENTS_URL')) {
    return ['PLATFORM_EVENTS_URL must be set too: PLATFORM_EVENTS_SECRET is set, but there is nowhere to send events to']
  }
  return []
}

/** The Kit app's client id and secret go together, as the platform's address and secret do. */
function kitOAuthProblems(raw: RawEnv, env: Env): string[] {
  const given = (name: string) => Boolean(raw[name]?.trim())
  if (env.KIT_OAUTH_CLIENT_ID !== undefined && !given('KIT_OAUTH_CLIENT_SECRET')) {
    return ['KIT_OAUTH_CLIENT_SECRET must be set too: KIT_OAUTH_CLIENT_ID is set, and Kit gives tokens only to the app with both']
  }
  if (env.KIT_OAUTH_CLIENT_SECRET !== undefined && !given('KIT_OAUTH_CLIENT_ID')) {
    return ['KIT_OAUTH_CLIENT_ID must be set too: KIT_OAUTH_CLIENT_SECRET is set, but names no Kit app']
  }
  return []
}

/**
 * *Connect with Kit* needs the app's client and a public address for Kit to send the owner back
 * to; a client without PUBLIC_URL is noted (the panel then offers the API key only).
 */
function kitOAuthOf(env: Env, publicUrl: string | null, notes: string[]): KitOAuthConfig | null {
  const { KIT_OAUTH_CLIENT_ID: clientId, KIT_OAUTH_CLIENT_SECRET: clientSecret } = env
  if (clientId === undefined || clientSecret === undefined) return null
  if (publicUrl === null) {
    notes.push('KIT_OAUTH_CLIENT_ID is set but PUBLIC_URL is not: Kit has nowhere to send the owner back, so Connect with Kit is off')
    return null
  }
  return { clientId, clientSecret, redirectUri: `${publicUrl}/oauth/kit/callback` }
}

/**
 * The local App Station mints real session tokens and signs events: it runs only when asked for
 * (KIT_DEV_HOST=1), outside production, on loopback, and with secrets generated here for
 * development (never from the environment, and from secrets.json only when marked as generated
 * there), so it can never hand out tokens that a real App Station would also accept.
 */
function devHostProblems(raw: RawEnv, host: string): string[] {
  const problems: string[] = []
  if (isProduction(raw.NODE_ENV)) {
    problems.push(
      `KIT_DEV_HOST=1 (the local App Station) is for development only and is refused with NODE_ENV=${raw.NODE_ENV?.trim()}; unset KIT_DEV_HOST (or set it to 0)`,
    )
  }
  if (!isLoopbackHost(host)) {
    problems.push(
      `KIT_DEV_HOST=1 serves a page that mints session tokens, so HOST must be a loopback address (127.0.0.1, ::1 or localhost), not ${host}`,
    )
  }
  const given = SECRET_NAMES.filter((name) => raw[name] !== undefined && raw[name] !== '')
  if (given.length > 0) {
    problems.push(
      `KIT_DEV_HOST=1 mints session tokens and signs events with the configured secrets, so it runs only with generated development secrets: unset ${given.join(', ')} (or set KIT_DEV_HOST=0)`,
    )
  }
  return problems
}

/** The secrets in development: those not set come from (or are generated into) secrets.json. */
function developmentSecrets(
  raw: RawEnv,
  env: Env,
  devHost: boolean,
  problems: string[],
  notes: string[],
): Partial<Record<SecretName, string>> {
  const missing = SECRET_NAMES.filter((name) => raw[name] === undefined || raw[name] === '')
  if (missing.length === 0) return env
  const file = devSecretsFile(env.DATABASE_PATH)
  const { values, generated, notGenerated } = readOrGenerateDevSecrets(file, missing, devHost)
  if (devHost && notGenerated.length > 0) {
    problems.push(
      `KIT_DEV_HOST=1 mints session tokens and signs events, so it runs only with secrets generated here for development: ${notGenerated.join(', ')} in ${file} ${notGenerated.length === 1 ? 'was' : 'were'} not (written in by hand, or by an older version); move that file away to generate new development secrets (data sealed with its ENCRYPTION_KEY then cannot be read), or set KIT_DEV_HOST=0`,
    )
  } else if (generated.length > 0) notes.push(`generated ${generated.join(', ')} in ${file} (mode 0600)`)
  else notes.push(`using development secrets from ${file}`)
  return { ...env, ...values }
}

function devSecretsFile(databasePath: string): string {
  const dir = databasePath === ':memory:' ? './data' : dirname(databasePath)
  return resolve(join(dir, 'secrets.json'))
}

function lstatOrNull(file: string): Stats | null {
  try {
    return lstatSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/**
 * The secrets file is trusted only when it is a regular file of this user that nobody else can
 * read or change: a symbolic link could point the secrets anywhere, and another user's or a
 * group-readable file means someone else may know them.
 */
function secretsFileProblem(file: string, stats: Stats): string | null {
  if (stats.isSymbolicLink())
    return `${file} is a symbolic link; replace it with a regular file (or delete it to generate new development secrets)`
  if (!stats.isFile()) return `${file} is not a regular file; delete it to generate new development secrets`
  const uid = process.getuid?.()
  if (uid !== undefined && stats.uid !== uid) {
    return `${file} is owned by another user (uid ${stats.uid}); run the server as its owner, or delete it to generate new development secrets`
  }
  if ((stats.mode & 0o077) !== 0) {
    return `${file} can be read by group or others (mode ${(stats.mode & 0o777).toString(8)}); run "chmod 600 ${file}" (or delete it to generate new development secrets)`
  }
  return null
}

/**
 * The development secrets from secrets.json, generating (and marking) those missing or malformed.
 * `notGenerated` names the values taken from the file that carry no valid generated mark; with
 * `onlyGenerated` (the local App Station) the file is then left as it is.
 */
function readOrGenerateDevSecrets(
  file: string,
  wanted: SecretName[],
  onlyGenerated: boolean,
): { values: Partial<Record<SecretName, string>>; generated: SecretName[]; notGenerated: SecretName[] } {
  let stored: StoredSecrets = {}
  const stats = lstatOrNull(file)
  if (stats) {
    const problem = secretsFileProblem(file, stats)
    if (problem) throw new ConfigError([problem])
    stored = JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets
  }
  const generated = wanted.filter((name) => {
    const value = stored[name]
    return typeof value !== 'string' || !accepts(name, value)
  })
  const notGenerated = wanted.filter((name) => !generated.includes(name) && !isGeneratedHere(stored, name))
  if (onlyGenerated && notGenerated.length > 0) return { values: {}, generated: [], notGenerated }
  if (generated.length > 0) {
    stored = withGeneratedSecrets(stored, generated)
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 })
    chmodSync(file, 0o600)
  }
  const values: Partial<Record<SecretName, string>> = {}
  for (const name of wanted) values[name] = stored[name]
  return { values, generated, notGenerated }
}
