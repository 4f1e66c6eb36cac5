// npm run start:cluster: several instances of the plugin on one machine, sharing one PostgreSQL
// database and one event bus consumer, to try running it as a cluster locally.
//
//   CLUSTER_INSTANCES (3) instances on ports CLUSTER_BASE_PORT (3001), 3002, … at HOST (127.0.0.1)
//   DATABASE_URL      postgres://postgres@127.0.0.1:5432/kit_cluster (created when missing)
//   EVENT_BUS_URL     nats://127.0.0.1:4222 (set it empty for HTTP intake only)
//   KIT_API_URL       passed on as given (real Kit by default; the stand-in: http://127.0.0.1:8790)
//
// Development (the default) serves the local App Station on the first instance only, and every
// instance accepts the session tokens it mints (one issuer for all). The secrets are generated
// once into data/cluster/secrets.json (mode 0600, marked as generated there, as the server marks
// its own), beside the DATABASE_PATH every instance is given — only so that each finds that file:
// the local App Station runs only with secrets generated there, never from the environment. The
// data itself is in PostgreSQL: several processes on one SQLite file is no supported setup (the
// embedded queue takes back every lease at start).
// NODE_ENV=production takes the three secrets from the environment when all are set, otherwise
// from that same file, and passes them to every instance; no local App Station then, and
// METRICS_TOKEN must be set (as for any production start).
// Each instance's output is prefixed with its port; Ctrl-C stops them all.
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import pg from 'pg'
import { isProduction, SECRET_NAMES, withGeneratedSecrets } from '../server/lib/environment.mjs'
import { SERVER_ENTRY } from './server-build.mjs'

const env = { ...process.env }
const production = isProduction(env.NODE_ENV)
const count = Number(env.CLUSTER_INSTANCES || 3)
const basePort = Number(env.CLUSTER_BASE_PORT || 3001)
const host = env.HOST || '127.0.0.1'
const databaseUrl = env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/kit_cluster'
const databasePath = resolve(env.DATABASE_PATH || 'data/cluster/kit.sqlite')
const busUrl = env.EVENT_BUS_URL ?? 'nats://127.0.0.1:4222'
const secretsFile = resolve(dirname(databasePath), 'secrets.json')
const origin = (port) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`

function fail(message) {
  process.stderr.write(`start:cluster: ${message}\n`)
  process.exit(1)
}

if (!Number.isInteger(count) || count < 1 || count > 16) fail('CLUSTER_INSTANCES must be an integer from 1 to 16')
if (!Number.isInteger(basePort) || basePort < 1 || basePort + count - 1 > 65535) fail('CLUSTER_BASE_PORT must be a port number')
if (production && !env.METRICS_TOKEN)
  fail(
    'METRICS_TOKEN is required with NODE_ENV=production: /metrics and /docs/openapi.json answer only with "Authorization: Bearer <METRICS_TOKEN>"',
  )
if (!/^postgres(ql)?:\/\//.test(databaseUrl))
  fail('DATABASE_URL must be a postgres:// URL such as postgres://postgres@127.0.0.1:5432/kit_cluster')

/** The development secrets file the server itself would write: generated once, mode 0600, ours alone. */
function clusterSecrets() {
  if (existsSync(secretsFile)) {
    const stats = lstatSync(secretsFile)
    if (!stats.isFile()) fail(`${secretsFile} is not a regular file; delete it to generate new secrets`)
    if ((stats.mode & 0o077) !== 0)
      fail(`${secretsFile} can be read by group or others; run "chmod 600 ${secretsFile}" (or delete it to generate new secrets)`)
    const stored = JSON.parse(readFileSync(secretsFile, 'utf8'))
    // Secrets not generated here are used as they are; the first instance's local App Station refuses them.
    if (SECRET_NAMES.every((name) => typeof stored[name] === 'string')) return stored
  }
  const secrets = withGeneratedSecrets({}, SECRET_NAMES)
  mkdirSync(dirname(secretsFile), { recursive: true, mode: 0o700 })
  writeFileSync(secretsFile, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 })
  chmodSync(secretsFile, 0o600)
  console.log(`start:cluster: generated the cluster's secrets in ${secretsFile} (mode 0600)`)
  return secrets
}

/** The admin connection is the same server's `postgres` database. */
async function withAdmin(work) {
  const url = new URL(databaseUrl)
  url.pathname = '/postgres'
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (err) {
    fail(`PostgreSQL is not reachable for ${url.host} (${err.message}); start it, or point DATABASE_URL at one that runs`)
  }
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => {})
  }
}

async function ensureDatabase() {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1))
  if (!name) fail('DATABASE_URL must name a database, such as postgres://postgres@127.0.0.1:5432/kit_cluster')
  await withAdmin(async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (rowCount) return
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`)
    console.log(`start:cluster: created the database ${name}`)
  })
}

async function waitReady(url, child) {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline && child.exitCode === null) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return true
    await new Promise((r) => setTimeout(r, 250))
  }
  return false
}

function prefixed(stream, label, out) {
  createInterface({ input: stream }).on('line', (line) => out.write(`${label} ${line}\n`))
}

const secrets = clusterSecrets()
await ensureDatabase()

const common = {
  DATABASE_PATH: databasePath,
  DATABASE_URL: databaseUrl,
  ...(busUrl ? { EVENT_BUS_URL: busUrl } : {}),
  HOST: host,
  // One issuer for all: a session token minted for one instance is good on every other.
  APPSTATION_ISSUER: env.APPSTATION_ISSUER || origin(basePort),
}
if (production) {
  const given = SECRET_NAMES.filter((name) => env[name])
  if (given.length > 0 && given.length < SECRET_NAMES.length) {
    fail(`set all of ${SECRET_NAMES.join(', ')} or none (then ${secretsFile} is used); only ${given.join(', ')} is set`)
  }
  if (given.length === 0) for (const name of SECRET_NAMES) common[name] = secrets[name]
} else {
  const given = SECRET_NAMES.filter((name) => env[name])
  if (given.length > 0)
    fail(`in development the instances share ${secretsFile}: unset ${given.join(', ')} (or run with NODE_ENV=production)`)
}

const devHostOnFirst = !production && env.KIT_DEV_HOST !== '0'
const built = spawnSync(process.execPath, ['scripts/ensure-ui.mjs'], {
  stdio: 'inherit',
  env: { ...env, KIT_DEV_HOST: devHostOnFirst ? '1' : '0' },
})
if (built.status !== 0) process.exit(built.status ?? 1)
const serverBuilt = spawnSync(process.execPath, ['scripts/ensure-server.mjs'], { stdio: 'inherit', env })
if (serverBuilt.status !== 0) process.exit(serverBuilt.status ?? 1)

const children = []
let stopping = false
for (let i = 0; i < count; i++) {
  const port = basePort + i
  const label = `[${port}]`
  const child = spawn(process.execPath, ['--enable-source-maps', SERVER_ENTRY], {
    env: { ...env, ...common, PORT: String(port), KIT_DEV_HOST: devHostOnFirst && i === 0 ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  prefixed(child.stdout, label, process.stdout)
  prefixed(child.stderr, label, process.stderr)
  child.on('exit', (code, signal) => {
    console.log(`${label} exited (${signal ?? code})${stopping ? '' : '; the other instances keep running'}`)
    if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(stopping ? 0 : 1)
  })
  children.push({
    child,
    port,
    get exitCode() {
      return child.exitCode
    },
    get signalCode() {
      return child.signalCode
    },
  })
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    console.log(`start:cluster: stopping ${count} instances`)
    for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM')
  })
}

const ready = await Promise.all(children.map(({ child, port }) => waitReady(origin(port), child)))
if (ready.every(Boolean)) {
  console.log(`start:cluster: ${count} instances ready: ${children.map(({ port }) => origin(port)).join(', ')}`)
  console.log(
    `start:cluster: PostgreSQL ${new URL(databaseUrl).pathname.slice(1)}; ${busUrl ? `event bus ${busUrl}` : 'no event bus (HTTP intake only)'}; Kit at ${env.KIT_API_URL || 'https://api.kit.com'}`,
  )
  if (devHostOnFirst)
    console.log(
      `start:cluster: local App Station: ${origin(basePort)}/dev/ (its panel talks to instance 1; events it sends can go to any instance)`,
    )
} else if (!stopping) {
  console.error('start:cluster: not every instance became ready; see the lines above')
}
