/**
 * What every cluster drill stands on: the Kit stand-in (optionally behind the blackout proxy),
 * a fresh database, a JetStream stream and consumer of this run, and three instances sharing
 * them. Events go to the instances in turn over HTTP, or on the bus.
 */
import { randomBytes } from 'node:crypto'
import { publishEvents, startBusRun, consumerState, type BusRun } from '../../bench/lib/bus.ts'
import { clusterDatabase, postSpread, startCluster, type Cluster, type ClusterDatabase } from '../../bench/lib/cluster.ts'
import { newSecrets, sleep, type Secrets } from '../../bench/lib/env.ts'
import type { MemberEvent } from '../../bench/lib/events.ts'
import { openStore, type DeliveryStore } from '../../bench/lib/store.ts'
import { startKitStandin, type KitStandin } from '../../tests/kit-standin/server.ts'
import { startKitProxy, type KitProxy } from '../proxy.ts'

export const INSTANCES = 3

export interface StackOptions {
  label: string
  rate: { limit: number; windowMs: number }
  /** Put the switchable proxy between the instances and the stand-in. */
  proxy?: boolean
  /** Have the instances consume a stream of this run. */
  bus?: boolean
  /** A Kit URL nothing answers at (the garbage drill needs no Kit). */
  noKit?: boolean
}

export interface Stack {
  key: string
  kit: KitStandin
  proxy: KitProxy | null
  bus: BusRun | null
  cluster: Cluster
  secrets: Secrets
  /** The run's PostgreSQL database. */
  databaseUrl: string
  store: DeliveryStore
  /** Posts the events over HTTP, each to the next instance that is up; statuses in the events' order. */
  post(events: MemberEvent[], concurrency?: number): Promise<number[]>
  /** Publishes the events on the bus; 202 per event the stream stored. */
  publish(events: MemberEvent[]): Promise<number[]>
  close(): Promise<void>
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const key = `kit_cluster_${options.label}_${randomBytes(3).toString('hex')}`
  const kit = await startKitStandin({ apiKeys: [key], rateLimit: options.rate })
  const proxy = options.proxy ? await startKitProxy(kit.url) : null
  const bus = options.bus ? await startBusRun(options.label) : null
  const secrets = newSecrets()
  let database: ClusterDatabase
  let cluster: Cluster
  try {
    database = await clusterDatabase(`kit_drill_${options.label}`)
    cluster = await startCluster({
      count: INSTANCES,
      database,
      secrets,
      kitUrl: options.noKit ? 'http://127.0.0.1:9' : (proxy?.url ?? kit.url),
      rateLimit: options.rate.limit,
      rateWindowMs: options.rate.windowMs,
      ...(bus ? { busEnv: bus.env } : {}),
      label: `kit-drill-${options.label}`,
    })
  } catch (err) {
    await bus?.close()
    await proxy?.close()
    await kit.close()
    throw err
  }
  if (bus) {
    // The instances create the stream and consumer as they start consuming.
    const deadline = Date.now() + 30_000
    while ((await consumerState(bus)) === null) {
      if (Date.now() > deadline) throw new Error(`no instance created the bus consumer ${bus.consumer} within 30 s`)
      await sleep(100)
    }
  }
  const store = openStore(database.url)
  return {
    key,
    kit,
    proxy,
    bus,
    cluster,
    secrets,
    databaseUrl: database.url,
    store,
    post: (events, concurrency) => postSpread(cluster.urls(), secrets.hmacKey, events, concurrency),
    publish: (events) => {
      if (!bus) throw new Error('this stack has no event bus')
      return publishEvents(bus, secrets.hmacKey, events)
    },
    async close() {
      await store.close().catch(() => {})
      await cluster.close()
      await bus?.close()
      await proxy?.close()
      await kit.close()
    },
  }
}

/** The end of each instance's log, for a drill that broke. */
export function clusterLogs(cluster: Cluster, lines = 10): string {
  return cluster.instances
    .map(
      (s, i) =>
        `instance ${i + 1}: ${s ? s.process.output().trim().split('\n').slice(-lines).join('\n') || '(nothing at LOG_LEVEL=warn)' : '(down)'}`,
    )
    .join('\n')
}

/** Awaits `work`; when it fails, the error carries the end of every instance's log. */
export async function withClusterLogs<T>(cluster: Cluster, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${clusterLogs(cluster)}`, { cause: err })
  }
}
