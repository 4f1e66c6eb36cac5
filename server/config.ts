/**
 * Configuration from the environment. Development gets defaults that just work: missing secrets
 * are generated once and kept beside the database (mode 0600), marked as generated there.
 * Production (NODE_ENV `production` or `prod`, any case: the rule `npm start` uses too) refuses to
 * start and names every secret that is missing or malformed, and METRICS_TOKEN if unset. The local
 * App Station (KIT_DEV_HOST=1) is refused unless it is safe: development, loopback, and only
 * secrets generated here.
 */
import { isIPv4 } from 'node:net'
import { chmodSync, lstatSync, mkdirSync, readFileSync, writeFileSync, type Stats } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { derivedKeyId, KEY_ID_PATTERN, type EncryptionKey, type KeyRing } from './lib/crypto.ts'
import { isGeneratedHere, isProduction, SECRET_NAMES, withGeneratedSecrets, type SecretName, type StoredSecrets } from './lib/environment.mjs'

export interface Config {
  production: boolean
  /** KIT_DEV_HOST=1: serve the local App Station (/dev/), which mints session tokens. */
  devHost: boolean
  host: string
  port: number
  databasePath: string
  /** DATABASE_URL=postgres://…: several instances share this PostgreSQL database instead of the SQLite file. */
  databaseUrl: string | null
  /** Connections each instance keeps to PostgreSQL (DATABASE_POOL_SIZE). */
  databasePoolSize: number
  kitApiUrl: string
  issuer: string
  origin: string
  pluginId: string
  jwtSecret: string
  /** HMAC keys decoded from every `whsec_` entry of EVENTS_SECRET, newest first as given. */
  eventsSecrets: string[]
  /** Every key of ENCRYPTION_KEY, newest (used for every write) first. */
  encryptionKeys: KeyRing
  kitRateLimit: number
  kitRateWindowMs: number
  /**
   * How long a claimed delivery stays leased (DELIVERY_LEASE_MS); it gets half of it to finish.
   * On a shared database an instance that dies leaves its leases to expire, so shorter is faster
   * recovery. null: 120 s embedded, 30 s on PostgreSQL.
   */
  deliveryLeaseMs: number | null
  /** The longest a session token may live (exp − iat), in seconds. */
  sessionMaxLifetimeS: number
  /** Settings-API requests per minute for one user of one community. */
  apiRateLimit: number
  /** Kit key checks (saving a key, Test connection) per minute for one community. */
  kitCheckRateLimit: number
  /** Failed session tokens per minute from one source address before they answer 429 instead of 401. */
  sessionFailureLimit: number
  /** POST /events requests per minute from one source address, counted by each instance. */
  eventsRateLimit: number
  /** When set, /metrics and /docs/openapi.json require `Authorization: Bearer <token>`; required in production. */
  metricsToken: string | null
  /** How long a client may take to send a whole request (head and body) before it is closed. */
  requestTimeoutMs: number
  /** A socket with no traffic at all for this long is closed; longer than the slowest answer. */
  connectionTimeoutMs: number
  /** How long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number
  /** Finished deliveries and their events are deleted this many days after their last update. */
  retentionDays: number
  /** The largest member file one sync accepts (bytes), and the most members in it. */
  syncMaxBytes: number
  syncMaxRows: number
  /** How slow a member-file upload may be: see `SyncUploadPace`. */
  syncUpload: SyncUploadPace
  /** EVENT_BUS_URL set: member events are also consumed from a JetStream stream. */
  eventBus: EventBusConfig | null
  logLevel: string
}

/**
 * A member-file upload is never cut off while at least `minBytes` arrive in every `windowMs`,
 * however long it takes; one that sends nothing for `stallMs` is closed (408). It has no other
 * deadline: HTTP_REQUEST_TIMEOUT_MS applies to every other request.
 */
export interface SyncUploadPace {
  minBytes: number
  windowMs: number
  stallMs: number
}

export interface EventBusConfig {
  /** The NATS servers (`nats://` or `tls://`) from EVENT_BUS_URL, without credentials. */
  servers: string[]
  /** From `user:password@` (or a lone `token@`) in EVENT_BUS_URL; never logged. */
  auth: { user: string; pass: string } | { token: string } | null
  subject: string
  stream: string
  consumer: string
  /** Limits of the stream when the plugin creates it (an existing stream is used as it is). */
  streamLimits: StreamLimits
}

export interface StreamLimits {
  /** EVENT_BUS_STREAM_MAX_BYTES: the most bytes the stream keeps; the oldest messages go first. */
  maxBytes: number
  /** EVENT_BUS_STREAM_MAX_MSGS: the most messages it keeps. */
  maxMsgs: number
  /** EVENT_BUS_STREAM_MAX_AGE_S (in seconds): how long it keeps a message. */
  maxAgeMs: number
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxBytes: 1024 ** 3, maxMsgs: 1_000_000, maxAgeMs: 7 * 24 * 60 * 60 * 1000 }

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Refusing to start: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Returns a problem description, or null when the value is well-formed. */
function secretProblem(name: SecretName, value: string): string | null {
  switch (name) {
    case 'APPSTATION_JWT_SECRET':
      return Buffer.byteLength(value, 'utf8') >= 32 ? null : 'APPSTATION_JWT_SECRET must be at least 32 bytes'
    case 'EVENTS_SECRET': {
      const parts = value.split(/\s+/).filter(Boolean)
      const bad = parts.length === 0 || parts.some((p) => decodeWebhookSecret(p) === null)
      return bad ? 'EVENTS_SECRET must be one or more space-separated "whsec_<base64>" secrets' : null
    }
    case 'ENCRYPTION_KEY':
      return parseEncryptionKeys(value) === null
        ? 'ENCRYPTION_KEY must be one or more space-separated keys, each base64 of exactly 32 bytes, optionally as "<key id>:<base64>" (key ids of letters, digits, "_" or "-", each used once)'
        : null
  }
}

/** `[<kid>:]<base64>` entries separated by spaces, newest first; null when any entry is malformed. */
export function parseEncryptionKeys(value: string): KeyRing | null {
  const keys: EncryptionKey[] = []
  for (const entry of value.split(/\s+/).filter(Boolean)) {
    const colon = entry.indexOf(':')
    const key = decodeBase64Strict(colon === -1 ? entry : entry.slice(colon + 1))
    if (key?.length !== 32) return null
    const id = colon === -1 ? derivedKeyId(key) : entry.slice(0, colon)
    if (!KEY_ID_PATTERN.test(id) || keys.some((k) => k.id === id)) return null
    keys.push({ id, key })
  }
  const [newest, ...older] = keys
  return newest ? [newest, ...older] : null
}

function decodeBase64Strict(value: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return null
  return Buffer.from(value, 'base64')
}

/** `whsec_<base64>` → the raw HMAC key (base64), or null when malformed. */
export function decodeWebhookSecret(secret: string): string | null {
  if (!secret.startsWith('whsec_')) return null
  const raw = decodeBase64Strict(secret.slice('whsec_'.length))
  return raw && raw.length >= 16 ? raw.toString('base64') : null
}

/** 127.0.0.0/8, ::1 and localhost: plain http to these never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.trim().toLowerCase().replace(/^\[|\]$/g, '')
  if (host === 'localhost' || host === '::1') return true
  return isIPv4(host) && host.startsWith('127.')
}

function kitUrlProblem(value: string, production: boolean): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'KIT_API_URL must be an http(s) URL such as https://api.kit.com'
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return 'KIT_API_URL must be an http(s) URL such as https://api.kit.com'
  }
  if (production && url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) {
    return 'KIT_API_URL must be an https: URL in production (plain http is allowed only for loopback hosts: 127.0.0.0/8, ::1, localhost)'
  }
  return null
}

/** A JetStream stream or consumer name: no spaces, dots, wildcards or path separators. */
const BUS_NAME = /^[A-Za-z0-9_-]{1,64}$/
/** NATS subject tokens separated by dots; `*` a whole token, `>` only the last one. */
const BUS_SUBJECT = /^([^\s.*>]+|\*)(\.([^\s.*>]+|\*))*(\.>)?$|^>$/

function eventBusSettings(env: Env, problems: string[]): EventBusConfig | null {
  const url = env.EVENT_BUS_URL?.trim()
  if (!url) return null
  const servers: string[] = []
  let auth: EventBusConfig['auth'] = null
  let badServer = false
  for (const entry of url.split(',').map((s) => s.trim()).filter(Boolean)) {
    let parsed: URL
    try {
      parsed = new URL(entry)
    } catch {
      badServer = true
      continue
    }
    if (!['nats:', 'tls:'].includes(parsed.protocol) || parsed.hostname === '') badServer = true
    const user = decodeURIComponent(parsed.username)
    const pass = decodeURIComponent(parsed.password)
    if (user && !auth) auth = pass ? { user, pass } : { token: user }
    servers.push(`${parsed.protocol}//${parsed.host}`)
  }
  if (servers.length === 0 || badServer) {
    problems.push('EVENT_BUS_URL must be one or more comma-separated nats:// or tls:// URLs such as nats://127.0.0.1:4222 (unset it to receive events over HTTP only)')
  }
  const subject = env.EVENT_BUS_SUBJECT || 'appstation.members.>'
  if (!BUS_SUBJECT.test(subject)) {
    problems.push('EVENT_BUS_SUBJECT must be a NATS subject such as appstation.members.> (dot-separated tokens, "*" for one token, ">" only at the end)')
  }
  const stream = env.EVENT_BUS_STREAM || 'APPSTATION_MEMBERS'
  if (!BUS_NAME.test(stream)) problems.push('EVENT_BUS_STREAM must be 1 to 64 letters, digits, "_" or "-", such as APPSTATION_MEMBERS')
  const consumer = env.EVENT_BUS_CONSUMER || 'kit-plugin'
  if (!BUS_NAME.test(consumer)) problems.push('EVENT_BUS_CONSUMER must be 1 to 64 letters, digits, "_" or "-", such as kit-plugin')
  const streamLimits: StreamLimits = {
    maxBytes: intSetting(env, 'EVENT_BUS_STREAM_MAX_BYTES', DEFAULT_STREAM_LIMITS.maxBytes, problems, 1024 * 1024),
    maxMsgs: intSetting(env, 'EVENT_BUS_STREAM_MAX_MSGS', DEFAULT_STREAM_LIMITS.maxMsgs, problems, 1000),
    maxAgeMs: intSetting(env, 'EVENT_BUS_STREAM_MAX_AGE_S', DEFAULT_STREAM_LIMITS.maxAgeMs / 1000, problems, 60) * 1000,
  }
  return { servers, auth, subject, stream, consumer, streamLimits }
}

function intSetting(env: Env, name: string, fallback: number, problems: string[], min = 1): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) {
    problems.push(`${name} must be an integer ≥ ${min}`)
    return fallback
  }
  return n
}

/**
 * The local App Station mints real session tokens and signs events: it runs only when asked for
 * (KIT_DEV_HOST=1), outside production, on loopback, and with secrets generated here for
 * development (never from the environment, and from secrets.json only when marked as generated
 * there), so it can never hand out tokens that a real App Station would also accept.
 */
function devHostProblems(env: Env, host: string): string[] {
  const problems: string[] = []
  if (isProduction(env.NODE_ENV)) {
    problems.push(`KIT_DEV_HOST=1 (the local App Station) is for development only and is refused with NODE_ENV=${env.NODE_ENV?.trim()}; unset KIT_DEV_HOST (or set it to 0)`)
  }
  if (!isLoopbackHost(host)) {
    problems.push(`KIT_DEV_HOST=1 serves a page that mints session tokens, so HOST must be a loopback address (127.0.0.1, ::1 or localhost), not ${host}`)
  }
  const given = SECRET_NAMES.filter((name) => env[name] !== undefined && env[name] !== '')
  if (given.length > 0) {
    problems.push(
      `KIT_DEV_HOST=1 mints session tokens and signs events with the configured secrets, so it runs only with generated development secrets: unset ${given.join(', ')} (or set KIT_DEV_HOST=0)`,
    )
  }
  return problems
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
export function loadConfig(env: Env = process.env): LoadedConfig {
  const production = isProduction(env.NODE_ENV)
  const problems: string[] = []
  const notes: string[] = []

  const devHostSetting = env.KIT_DEV_HOST ?? ''
  if (!['', '0', '1'].includes(devHostSetting)) problems.push('KIT_DEV_HOST must be 1 (serve the local App Station at /dev/) or 0')
  const devHost = devHostSetting === '1'

  const host = env.HOST || '127.0.0.1'
  const port = intSetting(env, 'PORT', 8787, problems, 0)
  const databasePath = env.DATABASE_PATH || './data/kit.sqlite'
  const databaseUrl = env.DATABASE_URL?.trim() || null
  if (databaseUrl !== null && !/^postgres(ql)?:\/\/[^\s]+$/.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a PostgreSQL URL such as postgres://user@host:5432/database (leave it unset for the embedded SQLite file at DATABASE_PATH)')
  }
  const databasePoolSize = intSetting(env, 'DATABASE_POOL_SIZE', 10, problems)
  const ownOrigin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const issuer = env.APPSTATION_ISSUER || ownOrigin
  const origin = env.APPSTATION_ORIGIN || issuer
  if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
    problems.push('APPSTATION_ORIGIN must be an origin such as https://appstation.example (scheme and host, no path)')
  }
  const logLevel = env.LOG_LEVEL || 'info'
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
  const kitApiUrl = (env.KIT_API_URL || 'https://api.kit.com').replace(/\/+$/, '')
  const kitApiUrlProblem = kitUrlProblem(kitApiUrl, production)
  if (kitApiUrlProblem) problems.push(kitApiUrlProblem)
  if (devHost) problems.push(...devHostProblems(env, host))

  const secrets = {} as Record<SecretName, string>
  const missing: SecretName[] = []
  for (const name of SECRET_NAMES) {
    const value = env[name]
    if (value === undefined || value === '') {
      missing.push(name)
      continue
    }
    const problem = secretProblem(name, value)
    if (problem) problems.push(problem)
    else secrets[name] = value
  }

  if (missing.length > 0) {
    if (production) {
      for (const name of missing) problems.push(`${name} is required in production`)
    } else {
      const file = devSecretsFile(databasePath)
      const { values, generated, notGenerated } = readOrGenerateDevSecrets(file, missing, devHost)
      Object.assign(secrets, values)
      if (devHost && notGenerated.length > 0) {
        problems.push(
          `KIT_DEV_HOST=1 mints session tokens and signs events, so it runs only with secrets generated here for development: ${notGenerated.join(', ')} in ${file} ${notGenerated.length === 1 ? 'was' : 'were'} not (written in by hand, or by an older version); move that file away to generate new development secrets (data sealed with its ENCRYPTION_KEY then cannot be read), or set KIT_DEV_HOST=0`,
        )
      } else if (generated.length > 0) notes.push(`generated ${generated.join(', ')} in ${file} (mode 0600)`)
      else notes.push(`using development secrets from ${file}`)
    }
  }

  const kitRateLimit = intSetting(env, 'KIT_RATE_LIMIT', 120, problems)
  const kitRateWindowMs = intSetting(env, 'KIT_RATE_WINDOW_MS', 60_000, problems)
  const deliveryLeaseMs = env.DELIVERY_LEASE_MS ? intSetting(env, 'DELIVERY_LEASE_MS', 30_000, problems, 2000) : null
  const sessionMaxLifetimeS = intSetting(env, 'SESSION_MAX_LIFETIME_S', 600, problems)
  const metricsToken = env.METRICS_TOKEN || null
  if (metricsToken !== null && !/^[\x21-\x7e]{16,}$/.test(metricsToken)) {
    problems.push('METRICS_TOKEN must be at least 16 printable characters without spaces, for example 32 random bytes written as hex')
  }
  if (metricsToken === null && production) {
    problems.push('METRICS_TOKEN is required in production: /metrics and /docs/openapi.json answer only with "Authorization: Bearer <METRICS_TOKEN>" (at least 16 printable characters, for example 32 random bytes written as hex)')
  }
  const apiRateLimit = intSetting(env, 'API_RATE_LIMIT', 120, problems)
  const kitCheckRateLimit = intSetting(env, 'KIT_CHECK_RATE_LIMIT', 10, problems)
  const sessionFailureLimit = intSetting(env, 'SESSION_FAILURE_LIMIT', 60, problems)
  const eventsRateLimit = intSetting(env, 'EVENTS_RATE_LIMIT', 60_000, problems)
  const requestTimeoutMs = intSetting(env, 'HTTP_REQUEST_TIMEOUT_MS', 30_000, problems, 100)
  const connectionTimeoutMs = intSetting(env, 'HTTP_IDLE_TIMEOUT_MS', 120_000, problems, 100)
  const keepAliveTimeoutMs = intSetting(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', 10_000, problems, 100)
  const retentionDays = intSetting(env, 'RETENTION_DAYS', 30, problems)
  const syncMaxBytes = intSetting(env, 'SYNC_MAX_BYTES', 64 * 1024 * 1024, problems, 1024)
  const syncMaxRows = intSetting(env, 'SYNC_MAX_ROWS', 100_000, problems)
  if (syncMaxRows > 1_000_000) problems.push('SYNC_MAX_ROWS must be at most 1000000 (split larger member lists into several syncs)')
  const syncUpload: SyncUploadPace = {
    minBytes: intSetting(env, 'SYNC_UPLOAD_MIN_BYTES', 16 * 1024, problems),
    windowMs: intSetting(env, 'SYNC_UPLOAD_WINDOW_MS', 10_000, problems, 100),
    stallMs: intSetting(env, 'SYNC_UPLOAD_STALL_MS', 30_000, problems, 100),
  }
  if (syncUpload.stallMs < syncUpload.windowMs) problems.push('SYNC_UPLOAD_STALL_MS must be at least SYNC_UPLOAD_WINDOW_MS')
  const eventBus = eventBusSettings(env, problems)
  if (problems.length > 0) throw new ConfigError(problems)

  return {
    notes,
    config: {
      production,
      devHost,
      host,
      port,
      databasePath,
      databaseUrl,
      databasePoolSize,
      kitApiUrl,
      issuer,
      origin,
      pluginId: env.PLUGIN_ID || 'kit',
      jwtSecret: secrets.APPSTATION_JWT_SECRET,
      eventsSecrets: secrets.EVENTS_SECRET.split(/\s+/)
        .filter(Boolean)
        .map((s) => decodeWebhookSecret(s) as string),
      encryptionKeys: parseEncryptionKeys(secrets.ENCRYPTION_KEY) as KeyRing,
      kitRateLimit,
      kitRateWindowMs,
      deliveryLeaseMs,
      sessionMaxLifetimeS,
      metricsToken,
      apiRateLimit,
      kitCheckRateLimit,
      sessionFailureLimit,
      eventsRateLimit,
      requestTimeoutMs,
      connectionTimeoutMs,
      keepAliveTimeoutMs,
      retentionDays,
      syncMaxBytes,
      syncMaxRows,
      syncUpload,
      eventBus,
      logLevel,
    },
  }
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
  if (stats.isSymbolicLink()) return `${file} is a symbolic link; replace it with a regular file (or delete it to generate new development secrets)`
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
    return typeof value !== 'string' || secretProblem(name, value) !== null
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
