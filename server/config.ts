/**
 * Configuration from the environment (CONTRACT §1). Development gets defaults that just work:
 * missing secrets are generated once and kept beside the database (mode 0600). Production refuses
 * to start and names every secret that is missing or malformed.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

export interface Config {
  production: boolean
  host: string
  port: number
  databasePath: string
  kitApiUrl: string
  issuer: string
  origin: string
  pluginId: string
  jwtSecret: string
  /** HMAC keys decoded from every `whsec_` entry of EVENTS_SECRET, newest first as given. */
  eventsSecrets: string[]
  encryptionKey: Buffer
  kitRateLimit: number
  kitRateWindowMs: number
  /** Finished deliveries and their events are deleted this many days after their last update. */
  retentionDays: number
  logLevel: string
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Refusing to start: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

const SECRET_NAMES = ['APPSTATION_JWT_SECRET', 'EVENTS_SECRET', 'ENCRYPTION_KEY'] as const
type SecretName = (typeof SECRET_NAMES)[number]

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
      return decodeBase64Strict(value)?.length === 32 ? null : 'ENCRYPTION_KEY must be base64 of exactly 32 bytes'
  }
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

function generateSecret(name: SecretName): string {
  switch (name) {
    case 'APPSTATION_JWT_SECRET':
      return randomBytes(48).toString('base64url')
    case 'EVENTS_SECRET':
      return `whsec_${randomBytes(32).toString('base64')}`
    case 'ENCRYPTION_KEY':
      return randomBytes(32).toString('base64')
  }
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
  const production = env.NODE_ENV === 'production'
  const problems: string[] = []
  const notes: string[] = []

  const host = env.HOST || '127.0.0.1'
  const port = intSetting(env, 'PORT', 8787, problems, 0)
  const databasePath = env.DATABASE_PATH || './data/kit.sqlite'
  const ownOrigin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const issuer = env.APPSTATION_ISSUER || ownOrigin
  const origin = env.APPSTATION_ORIGIN || issuer
  if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
    problems.push('APPSTATION_ORIGIN must be an origin such as https://appstation.example (scheme and host, no path)')
  }
  const logLevel = env.LOG_LEVEL || 'info'
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
  const kitApiUrl = (env.KIT_API_URL || 'https://api.kit.com').replace(/\/+$/, '')
  if (!/^https?:\/\//.test(kitApiUrl)) problems.push('KIT_API_URL must be an http(s) URL')

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
      const { values, generated } = readOrGenerateDevSecrets(file, missing)
      Object.assign(secrets, values)
      if (generated.length > 0) notes.push(`generated ${generated.join(', ')} in ${file} (mode 0600)`)
      else notes.push(`using development secrets from ${file}`)
    }
  }

  const kitRateLimit = intSetting(env, 'KIT_RATE_LIMIT', 120, problems)
  const kitRateWindowMs = intSetting(env, 'KIT_RATE_WINDOW_MS', 60_000, problems)
  const retentionDays = intSetting(env, 'RETENTION_DAYS', 30, problems)
  if (problems.length > 0) throw new ConfigError(problems)

  return {
    notes,
    config: {
      production,
      host,
      port,
      databasePath,
      kitApiUrl,
      issuer,
      origin,
      pluginId: env.PLUGIN_ID || 'kit',
      jwtSecret: secrets.APPSTATION_JWT_SECRET,
      eventsSecrets: secrets.EVENTS_SECRET.split(/\s+/)
        .filter(Boolean)
        .map((s) => decodeWebhookSecret(s) as string),
      encryptionKey: Buffer.from(secrets.ENCRYPTION_KEY, 'base64'),
      kitRateLimit,
      kitRateWindowMs,
      retentionDays,
      logLevel,
    },
  }
}

function devSecretsFile(databasePath: string): string {
  const dir = databasePath === ':memory:' ? './data' : dirname(databasePath)
  return resolve(join(dir, 'secrets.json'))
}

function readOrGenerateDevSecrets(
  file: string,
  wanted: SecretName[],
): { values: Partial<Record<SecretName, string>>; generated: SecretName[] } {
  let stored: Partial<Record<SecretName, string>> = {}
  if (existsSync(file)) {
    stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<SecretName, string>>
  }
  const generated: SecretName[] = []
  for (const name of wanted) {
    const value = stored[name]
    if (value === undefined || secretProblem(name, value) !== null) {
      stored[name] = generateSecret(name)
      generated.push(name)
    }
  }
  if (generated.length > 0) {
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 })
    chmodSync(file, 0o600)
  }
  const values: Partial<Record<SecretName, string>> = {}
  for (const name of wanted) values[name] = stored[name]
  return { values, generated }
}
