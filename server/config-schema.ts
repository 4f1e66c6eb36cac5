// Over 400 lines: one declaration per environment variable (about forty), each with its meaning, default and check; splitting it would split the one table.
/**
 * Every environment variable the server reads, declared once as a TypeBox schema with a line for
 * people beside it. From this one declaration come the settings' type (`Env`), their defaults, the
 * messages that refuse a start (each names the variable and says what it must be), and the
 * configuration table of docs/configuration.md (`npm run docs:config`). Rules that span several
 * variables, and the production rules beyond "required", are small named functions in config.ts.
 */
import { isIPv4 } from 'node:net'
import { Type, type Static, type TEnum, type TInteger, type TObject, type TSchema, type TString } from 'typebox'
import { Value } from 'typebox/value'
import { derivedKeyId, KEY_ID_PATTERN, type EncryptionKey, type KeyRing } from './lib/crypto.ts'

/** What a declaration says beside its schema. */
type Doc = {
  /** One line for people: the "meaning" column of the configuration table. */
  meaning: string
  /** The table's default when the schema's own default does not say it ("generated", "same as issuer"). */
  shown?: string
  /** Said after the default in the table, such as "64 MiB". */
  aside?: string
  /** Completes "NAME must be …" when a value is refused; integers and enums say it themselves. */
  expected?: string
  /** A credential, or a value that may carry one: marked in the table (no refusal ever quotes a value). */
  secret?: true
  /** Production refuses to start without it; `why` is said after "NAME is required in production". */
  production?: { required: true; why?: string }
  /** Blanks around the value are dropped before it is read. */
  trim?: true
}

/** A declaration as the reader and the table see it: a schema carrying its `Doc`. */
export type Declaration = TSchema &
  Doc & { type?: string; default?: unknown; pattern?: string; minimum?: number; maximum?: number; tooLarge?: string; enum?: string[] }

type IntegerOptions = Doc & { default?: number; minimum: number; maximum?: number; tooLarge?: string }
type StringOptions = Doc & { default?: string; pattern?: string }
// Each keeps its options in its type, so that a default can be read back (DEFAULT_STREAM_LIMITS).
const integer = <const O extends IntegerOptions>(options: O) => Type.Integer(options) as TInteger & O
const text = <const O extends StringOptions>(options: O) => Type.String(options) as TString & O
/** A string that must also pass `check` (what a pattern cannot say). */
const checked = <const O extends StringOptions>(options: O, check: (value: string) => boolean) => Type.Refine(text(options), check)
const oneOf = <const V extends readonly string[], const O extends Doc & { default: V[number] }>(values: V, options: O) =>
  Type.Enum([...values], options) as TEnum<[...V]> & O

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

/** The HMAC keys of every space-separated `whsec_` entry, or null when one is malformed or none is given. */
export function decodeWebhookSecrets(value: string): string[] | null {
  const keys = value.split(/\s+/).filter(Boolean).map(decodeWebhookSecret)
  return keys.length > 0 && keys.every((k) => k !== null) ? keys : null
}

/** 127.0.0.0/8, ::1 and localhost: plain http to these never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
  if (host === 'localhost' || host === '::1') return true
  return isIPv4(host) && host.startsWith('127.')
}

export type BusAuth = { user: string; pass: string } | { token: string } | null

/** Comma-separated `nats://` or `tls://` URLs → the servers without credentials, and the first credentials given; null when one is not such a URL. */
export function parseBusUrl(value: string): { servers: string[]; auth: BusAuth } | null {
  const servers: string[] = []
  let auth: BusAuth = null
  for (const entry of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const url = urlOrNull(entry)
    if (!url || !['nats:', 'tls:'].includes(url.protocol) || url.hostname === '') return null
    const [user, pass] = [decodeURIComponent(url.username), decodeURIComponent(url.password)]
    if (user && !auth) auth = pass ? { user, pass } : { token: user }
    servers.push(`${url.protocol}//${url.host}`)
  }
  return servers.length > 0 ? { servers, auth } : null
}

function urlOrNull(value: string): URL | null {
  try {
    return new URL(value)
  } catch {
    return null
  }
}

const isHttpUrl = (value: string) => ['http:', 'https:'].includes(urlOrNull(value)?.protocol ?? '')

/** https anywhere, plain http only to a loopback host (nothing then leaves the machine unencrypted). */
export function isSecureOrLoopbackUrl(value: string): boolean {
  const url = urlOrNull(value)
  if (!url || url.hostname === '') return false
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
}

/** Scheme and host, no path: what APPSTATION_ORIGIN must be. */
export const ORIGIN = /^https?:\/\/[^/\s]+$/
/** A JetStream stream or consumer name: no spaces, dots, wildcards or path separators. */
const BUS_NAME = /^[A-Za-z0-9_-]{1,64}$/
/** NATS subject tokens separated by dots; `*` a whole token, `>` only the last one. */
const BUS_SUBJECT = /^([^\s.*>]+|\*)(\.([^\s.*>]+|\*))*(\.>)?$|^>$/

const SECRET_IN_PRODUCTION = { required: true } as const
const busName = (example: string) => `1 to 64 letters, digits, "_" or "-", such as ${example}`

/** Every variable, in the table's order (which is also the order refusals are named in). */
export const VARIABLES = {
  PORT: integer({ default: 8787, minimum: 0, meaning: 'the port to listen on' }),
  HOST: text({ default: '127.0.0.1', meaning: 'the address to listen on' }),
  DATABASE_PATH: text({ default: './data/kit.sqlite', meaning: 'SQLite file (`:memory:` allowed); migrations run at start' }),
  DATABASE_URL: Type.Optional(
    text({
      pattern: /^postgres(ql)?:\/\/\S+$/.source,
      trim: true,
      secret: true,
      shown: 'unset (SQLite)',
      expected:
        'a PostgreSQL URL such as postgres://user@host:5432/database (leave it unset for the embedded SQLite file at DATABASE_PATH)',
      meaning:
        'store everything in PostgreSQL instead, so that several instances can share it (see [Running several instances](cluster.md)); migrations run at start, one instance at a time',
    }),
  ),
  DATABASE_POOL_SIZE: integer({ default: 10, minimum: 1, meaning: 'connections each instance keeps to PostgreSQL' }),
  DELIVERY_LEASE_MS: Type.Optional(
    integer({
      minimum: 2000,
      shown: '`120000` on SQLite, `30000` on PostgreSQL',
      meaning:
        "how long a claimed delivery is leased (it gets half of that to finish); on PostgreSQL, how long a dead instance's claimed work waits before another instance takes it",
    }),
  ),
  KIT_API_URL: checked(
    {
      default: 'https://api.kit.com',
      expected: 'an http(s) URL such as https://api.kit.com',
      meaning: 'Kit API base, without `/v4`; `https:` in production, except to loopback hosts (127.0.0.0/8, `::1`, `localhost`)',
    },
    (value) => isHttpUrl(value.replace(/\/+$/, '')), // as config.ts uses it: without trailing slashes
  ),
  APPSTATION_ISSUER: Type.Optional(text({ shown: '`http://HOST:PORT`', meaning: 'the `iss` every session token must carry' })),
  APPSTATION_ORIGIN: Type.Optional(
    text({
      pattern: ORIGIN.source,
      shown: 'same as issuer',
      expected: 'an origin such as https://appstation.example (scheme and host, no path)',
      meaning: 'the only origin allowed to frame the panel and to message it',
    }),
  ),
  PLUGIN_ID: text({ default: 'kit', meaning: 'the `aud` every session token must carry' }),
  APPSTATION_JWT_SECRET: Type.Optional(
    checked(
      {
        secret: true,
        production: SECRET_IN_PRODUCTION,
        shown: 'generated',
        expected: 'at least 32 bytes',
        meaning: 'HS256 secret for session tokens',
      },
      (value) => Buffer.byteLength(value, 'utf8') >= 32,
    ),
  ),
  EVENTS_SECRET: Type.Optional(
    checked(
      {
        secret: true,
        production: SECRET_IN_PRODUCTION,
        shown: 'generated',
        expected: 'one or more space-separated "whsec_<base64>" secrets',
        meaning: 'signs the member events sent to `POST /events`; several are accepted while rotating',
      },
      (value) => decodeWebhookSecrets(value) !== null,
    ),
  ),
  ENCRYPTION_KEY: Type.Optional(
    checked(
      {
        secret: true,
        production: SECRET_IN_PRODUCTION,
        shown: 'generated',
        expected:
          'one or more space-separated keys, each base64 of exactly 32 bytes, optionally as "<key id>:<base64>" (key ids of letters, digits, "_" or "-", each used once)',
        meaning: 'encrypts Kit credentials at rest; the first key seals every write, the others still decrypt (rotation)',
      },
      (value) => parseEncryptionKeys(value) !== null,
    ),
  ),
  KIT_RATE_LIMIT: integer({ default: 120, minimum: 1, meaning: "Kit's request budget per API key in each window" }),
  KIT_RATE_WINDOW_MS: integer({ default: 60_000, minimum: 1, meaning: "the window of Kit's request budget for API keys" }),
  KIT_OAUTH_CLIENT_ID: Type.Optional(
    text({
      pattern: /^[\x21-\x7e]{1,200}$/.source,
      trim: true,
      shown: 'unset (connect by API key only)',
      expected: 'the client id of your Kit app: printable characters without spaces',
      meaning:
        "your Kit app's OAuth client id; with `KIT_OAUTH_CLIENT_SECRET` and `PUBLIC_URL` the panel offers *Connect with Kit* (consent at `KIT_API_URL/v4/oauth/authorize`, redirect to `PUBLIC_URL/oauth/kit/callback`); see [Connect with Kit](oauth.md)",
    }),
  ),
  KIT_OAUTH_CLIENT_SECRET: Type.Optional(
    text({
      pattern: /^[\x21-\x7e]{1,500}$/.source,
      trim: true,
      secret: true,
      shown: 'unset (connect by API key only)',
      expected: 'the client secret of your Kit app: printable characters without spaces',
      meaning: "your Kit app's OAuth client secret; set together with `KIT_OAUTH_CLIENT_ID`, never logged",
    }),
  ),
  KIT_OAUTH_RATE_LIMIT: integer({ default: 600, minimum: 1, meaning: "Kit's request budget per OAuth connection in each window" }),
  KIT_OAUTH_RATE_WINDOW_MS: integer({ default: 60_000, minimum: 1, meaning: "the window of Kit's request budget for OAuth connections" }),
  KIT_DEV_HOST: oneOf(['0', '1'], {
    default: '0',
    shown: 'unset (`npm start` sets `1` unless `NODE_ENV` is production)',
    expected: '1 (serve the local App Station at /dev/) or 0',
    meaning:
      'the local App Station, refused unless `NODE_ENV` is not production, `HOST` is loopback, no secret is set in the environment and every secret in `secrets.json` was generated there (see below)',
  }),
  SESSION_MAX_LIFETIME_S: integer({
    default: 600,
    minimum: 1,
    meaning: 'longest session-token lifetime (`exp − iat`) accepted, in seconds',
  }),
  API_RATE_LIMIT: integer({ default: 120, minimum: 1, meaning: 'settings-API requests per minute per community and user' }),
  KIT_CHECK_RATE_LIMIT: integer({
    default: 10,
    minimum: 1,
    meaning: 'Kit key checks (`PUT /connection`, `POST /connection/test`) per minute per community',
  }),
  SESSION_FAILURE_LIMIT: integer({
    default: 60,
    minimum: 1,
    meaning:
      'session tokens that fail (missing, malformed, mis-signed; not merely expired) per minute per source address; past it such a request gets 429 instead of 401',
  }),
  EVENTS_RATE_LIMIT: integer({
    default: 60_000,
    minimum: 1,
    meaning:
      '`POST /events` requests per minute per source address, counted by each instance; past it 429 `rate_limited` with `Retry-After`',
  }),
  METRICS_TOKEN: Type.Optional(
    text({
      pattern: /^[\x21-\x7e]{16,}$/.source,
      secret: true,
      production: {
        required: true,
        why: '/metrics and /docs/openapi.json answer only with "Authorization: Bearer <METRICS_TOKEN>" (at least 16 printable characters, for example 32 random bytes written as hex)',
      },
      shown: 'unset (open)',
      expected: 'at least 16 printable characters without spaces, for example 32 random bytes written as hex',
      meaning:
        '`/metrics` and `/docs/openapi.json` require `Authorization: Bearer <METRICS_TOKEN>`; without it a production start is refused rather than leaving them open',
    }),
  ),
  HTTP_REQUEST_TIMEOUT_MS: integer({
    default: 30_000,
    minimum: 100,
    meaning:
      'time a client has to send a whole request (head and body); slower ones get 408 and are closed. Member-file uploads follow `SYNC_UPLOAD_*` instead',
  }),
  HTTP_IDLE_TIMEOUT_MS: integer({
    default: 120_000,
    minimum: 100,
    meaning:
      'a socket with no traffic for this long is closed; kept above the slowest panel answer (a Kit call may wait out a whole Kit window)',
  }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: integer({ default: 10_000, minimum: 100, meaning: 'how long an idle keep-alive connection stays open' }),
  EVENT_BUS_URL: Type.Optional(
    checked(
      {
        trim: true,
        secret: true,
        shown: 'unset (HTTP intake only)',
        expected:
          'one or more comma-separated nats:// or tls:// URLs such as nats://127.0.0.1:4222 (unset it to receive events over HTTP only)',
        meaning:
          'NATS with JetStream to also receive member events from; a `user:password@` (or `token@`) in the URL signs in and is never logged',
      },
      (value) => parseBusUrl(value) !== null,
    ),
  ),
  EVENT_BUS_SUBJECT: text({
    default: 'appstation.members.>',
    pattern: BUS_SUBJECT.source,
    expected: 'a NATS subject such as appstation.members.> (dot-separated tokens, "*" for one token, ">" only at the end)',
    meaning: 'the subjects member events are published on',
  }),
  EVENT_BUS_STREAM: text({
    default: 'APPSTATION_MEMBERS',
    pattern: BUS_NAME.source,
    expected: busName('APPSTATION_MEMBERS'),
    meaning: 'the JetStream stream holding them; created when missing (file storage, within the limits below), used as it is otherwise',
  }),
  EVENT_BUS_STREAM_MAX_BYTES: integer({
    default: 1024 ** 3,
    minimum: 1024 * 1024,
    aside: '1 GiB',
    meaning:
      'the most bytes a stream the plugin creates keeps; past it the oldest messages are dropped first, read or not, so keep it above the longest backlog you expect. A stream that already exists is never changed (a start warns when it has no limit at all)',
  }),
  EVENT_BUS_STREAM_MAX_MSGS: integer({
    default: 1_000_000,
    minimum: 1000,
    meaning: 'the most messages a stream the plugin creates keeps, likewise',
  }),
  EVENT_BUS_STREAM_MAX_AGE_S: integer({
    default: 7 * 24 * 60 * 60,
    minimum: 60,
    aside: '7 days',
    meaning: 'how long a stream the plugin creates keeps a message, in seconds, likewise',
  }),
  EVENT_BUS_CONSUMER: text({
    default: 'kit-plugin',
    pattern: BUS_NAME.source,
    expected: busName('kit-plugin'),
    meaning: 'the durable pull consumer every instance shares; created when missing',
  }),
  SYNC_MAX_BYTES: integer({
    default: 64 * 1024 * 1024,
    minimum: 1024,
    aside: '64 MiB',
    meaning: 'largest member file one sync accepts; larger ones get 413',
  }),
  SYNC_MAX_ROWS: integer({
    default: 100_000,
    minimum: 1,
    maximum: 1_000_000,
    tooLarge: 'split larger member lists into several syncs',
    meaning: 'most members in one sync; more get 413',
  }),
  SYNC_UPLOAD_MIN_BYTES: integer({
    default: 16 * 1024,
    minimum: 1,
    meaning:
      'the pace a member-file upload must keep: never cut off while it sends at least this many bytes in every `SYNC_UPLOAD_WINDOW_MS`, however long it takes',
  }),
  SYNC_UPLOAD_WINDOW_MS: integer({ default: 10_000, minimum: 100, meaning: 'the window of that pace' }),
  SYNC_UPLOAD_STALL_MS: integer({
    default: 30_000,
    minimum: 100,
    meaning: 'an upload that sends no byte for this long is closed with 408; at least `SYNC_UPLOAD_WINDOW_MS`',
  }),
  RETENTION_DAYS: integer({
    default: 30,
    minimum: 1,
    meaning:
      'finished deliveries (succeeded, failed, skipped) and their events are deleted this many days after their last update; saved versions of the mappings this many days after they were saved, always keeping each community’s newest 100',
  }),
  PLATFORM_EVENTS_URL: Type.Optional(
    checked(
      {
        trim: true,
        shown: 'unset (nothing is sent)',
        expected:
          'an https URL such as https://appstation.example/kit-events (plain http only to loopback hosts: 127.0.0.0/8, ::1, localhost)',
        meaning:
          'where the plugin tells the platform what changed in Kit (unsubscribes, bounces, complaints, name and email changes, trouble with the connection); set together with `PLATFORM_EVENTS_SECRET`',
      },
      (value) => isSecureOrLoopbackUrl(value),
    ),
  ),
  PLATFORM_EVENTS_SECRET: Type.Optional(
    checked(
      {
        trim: true,
        secret: true,
        shown: 'unset (nothing is sent)',
        expected: 'one "whsec_<base64>" secret (at least 16 bytes)',
        meaning: 'signs the events sent to `PLATFORM_EVENTS_URL` (Standard Webhooks); set together with it',
      },
      (value) => decodeWebhookSecret(value) !== null,
    ),
  ),
  PUBLIC_URL: Type.Optional(
    checked(
      {
        trim: true,
        shown: 'unset (the plugin asks Kit instead of being told)',
        expected: 'an https origin such as https://kit-plugin.example (plain http only to loopback hosts: 127.0.0.0/8, ::1, localhost)',
        meaning: "the plugin's public origin, for Kit to call back (webhooks, OAuth redirect)",
      },
      (value) => ORIGIN.test(value.replace(/\/+$/, '')) && isSecureOrLoopbackUrl(value),
    ),
  ),
  KIT_POLL_INTERVAL_S: integer({
    default: 300,
    minimum: 1,
    meaning:
      'how often the plugin asks Kit what changed for each connection, in seconds (lowest priority: never delays deliveries or the panel)',
  }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
    meaning:
      "pino level; the requests the panel repeats while it is watched (Activity's list, a sync's progress) are logged at `debug`, other requests at `info`",
  }),
}

const DECLARED: Record<string, Declaration> = VARIABLES

/** The settings as read: every variable with a default has a value; the others may be missing. */
export type Env = Static<TObject<typeof VARIABLES>>
export type RawEnv = Record<string, string | undefined>

/** Whether the declaration of `name` accepts `value` as it is. */
export const accepts = (name: keyof typeof VARIABLES, value: unknown): boolean => Value.Check(VARIABLES[name], value)

/** "NAME must be …" for a value the declaration refuses (`keyword`: the JSON Schema rule it broke). */
function refusal(name: string, declared: Declaration, keyword: string): string {
  if (declared.type === 'integer') {
    if (keyword === 'maximum') return `${name} must be at most ${declared.maximum}${declared.tooLarge ? ` (${declared.tooLarge})` : ''}`
    return `${name} must be an integer ≥ ${declared.minimum}`
  }
  return `${name} must be ${declared.expected ?? `one of ${declared.enum?.join(', ')}`}`
}

/**
 * Reads every declared variable: an empty one counts as unset and takes its default; a refused one
 * is named in `problems` and takes its default too, so that later checks see sensible values.
 */
export function readEnv(raw: RawEnv, production: boolean): { env: Env; problems: string[] } {
  const env: Record<string, unknown> = {}
  const problems: string[] = []
  for (const [name, declared] of Object.entries(DECLARED)) {
    const given = declared.trim ? raw[name]?.trim() : raw[name]
    env[name] = declared.default
    if (given === undefined || given === '') {
      const required = production ? declared.production : undefined
      if (required) problems.push(`${name} is required in production${required.why ? `: ${required.why}` : ''}`)
      continue
    }
    const value = declared.type === 'integer' ? Number(given) : given
    const [error] = Value.Errors(declared, value)
    if (error) problems.push(refusal(name, declared, error.keyword))
    else env[name] = value
  }
  return { env: env as Env, problems }
}
