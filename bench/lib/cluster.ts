/**
 * Several instances of the real server sharing one PostgreSQL database (a fresh one per run on
 * CLUSTER_PG_ADMIN_URL's server, dropped at the end) and, when given, one event bus consumer, for
 * the cluster drills and benchmark.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { tempDir, type Secrets } from './env.ts'
import { postAll, type MemberEvent } from './events.ts'
import { CAPACITY_EVENTS_RATE_LIMIT, startServer, type ServerHandle } from './server.ts'

export const PG_ADMIN_URL = process.env.CLUSTER_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export interface ClusterDatabase {
  /** postgres://… of the run's database; every instance gets it as DATABASE_URL. */
  url: string
  drop(): Promise<void>
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${PG_ADMIN_URL} (${(err as Error).message}); start it or set CLUSTER_PG_ADMIN_URL to a server where this user may create databases`,
      { cause: err },
    )
  }
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/** A fresh database for one run; BENCH_KEEP_DATA=1 keeps it for a look afterwards. */
export async function clusterDatabase(prefix: string): Promise<ClusterDatabase> {
  const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`
  await admin((c) => c.query(`CREATE DATABASE ${name}`))
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  const keep = process.env.BENCH_KEEP_DATA === '1'
  if (keep) console.log(`BENCH_KEEP_DATA=1: database ${url.toString()} is kept after the run`)
  return {
    url: url.toString(),
    drop: async () => {
      if (!keep) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    },
  }
}

export interface ClusterOptions {
  count: number
  database: ClusterDatabase
  secrets: Secrets
  kitUrl: string
  rateLimit: number
  rateWindowMs: number
  /** EVENT_BUS_* settings, when the instances also consume the bus. */
  busEnv?: Record<string, string>
  /** A temp directory per instance (each server's own DATABASE_PATH stays unused on PostgreSQL). */
  label: string
}

export interface Cluster {
  /** null while an instance is down. */
  instances: (ServerHandle | null)[]
  /** Base URLs of the instances that are up. */
  urls(): string[]
  /** (Re)starts instance `i` on its own port. */
  start(i: number): Promise<ServerHandle>
  kill(i: number, signal: NodeJS.Signals): Promise<void>
  /** Stops every instance (SIGTERM) and drops the database. */
  close(): Promise<void>
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dirs = Array.from({ length: options.count }, () => tempDir(`${options.label}-instance`))
  const ports: (number | undefined)[] = new Array<number | undefined>(options.count).fill(undefined)
  const instances: (ServerHandle | null)[] = new Array<ServerHandle | null>(options.count).fill(null)
  const start = async (i: number): Promise<ServerHandle> => {
    const server = await startServer({
      dir: dirs[i] as string,
      secrets: options.secrets,
      kitUrl: options.kitUrl,
      ...(ports[i] === undefined ? {} : { port: ports[i] }),
      rateLimit: options.rateLimit,
      rateWindowMs: options.rateWindowMs,
      env: { DATABASE_URL: options.database.url, ...CAPACITY_EVENTS_RATE_LIMIT, ...options.busEnv },
      readyTimeoutMs: 60_000,
    })
    ports[i] = server.port
    instances[i] = server
    return server
  }
  const cluster: Cluster = {
    instances,
    urls: () => instances.filter((s): s is ServerHandle => s !== null).map((s) => s.url),
    start,
    async kill(i, signal) {
      const server = instances[i]
      instances[i] = null
      await server?.kill(signal)
    },
    async close() {
      await Promise.all(instances.flatMap((s, i) => (s ? [cluster.kill(i, 'SIGTERM')] : [])))
      await options.database.drop()
    },
  }
  try {
    // The first alone applies the migrations; the others then start together.
    await start(0)
    await Promise.all(Array.from({ length: options.count - 1 }, (_, k) => start(k + 1)))
  } catch (err) {
    await cluster.close().catch(() => {})
    throw err
  }
  return cluster
}

/** Spreads the events over the URLs in turn; an event whose instance went down answers 0. */
export async function postSpread(urls: string[], hmacKey: string, events: MemberEvent[], concurrency = 8): Promise<number[]> {
  if (urls.length === 0) return new Array<number>(events.length).fill(0)
  const byUrl = urls.map(() => [] as number[])
  events.forEach((_, i) => byUrl[i % urls.length]?.push(i))
  const statuses = new Array<number>(events.length).fill(0)
  await Promise.all(
    urls.map(async (url, u) => {
      const indexes = byUrl[u] as number[]
      const answers = await postAll(
        url,
        hmacKey,
        indexes.map((i) => events[i] as MemberEvent),
        Math.max(1, Math.ceil(concurrency / urls.length)),
      )
      indexes.forEach((i, k) => (statuses[i] = answers[k] ?? 0))
    }),
  )
  return statuses
}
