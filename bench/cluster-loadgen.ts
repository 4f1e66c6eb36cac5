/**
 * The intake load generator for several instances, run as its own process: pre-signs every event
 * before the clock starts, then drives the keep-alive connections spread evenly over the
 * instances' ports (see lib/load.ts), all of them at once, and prints one JSON line. Configured by
 * LOADGEN (JSON): ports, hmacKey, count (events per port), connections (in all), warmupMs, durationMs.
 */
import { performance } from 'node:perf_hooks'
import { event, member, signedHeaders } from './lib/events.ts'
import { runLoad, type RequestSet } from './lib/load.ts'

interface ClusterLoadgenConfig {
  ports: number[]
  hmacKey: string
  count: number
  connections: number
  warmupMs: number
  durationMs: number
}

function presign(port: number, config: ClusterLoadgenConfig): RequestSet {
  const timestamp = Math.floor(Date.now() / 1000)
  const parts: Buffer[] = []
  const offsets = [0]
  let length = 0
  const now = Date.now()
  for (let i = 0; i < config.count; i++) {
    const e = event(member('c_intake', `intake${port}`, i), 'user.signed_up', now + i)
    const body = JSON.stringify(e)
    const head =
      `POST /events HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      Object.entries(signedHeaders(config.hmacKey, e.id, body, timestamp))
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      '\r\n'
    const request = Buffer.from(head + body)
    parts.push(request)
    length += request.length
    offsets.push(length)
  }
  return { bytes: Buffer.concat(parts, length), offsets }
}

const config = JSON.parse(process.env.LOADGEN ?? '') as ClusterLoadgenConfig
const sets = config.ports.map((port) => presign(port, config))
process.stdout.write('presigned\n')
const cpuBefore = process.cpuUsage()
const loadStart = performance.now()
const perPort = Math.max(1, Math.round(config.connections / config.ports.length))
const results = await Promise.all(
  config.ports.map((port, i) =>
    runLoad({
      port,
      requests: sets[i] as RequestSet,
      connections: perPort,
      warmupMs: config.warmupMs,
      durationMs: config.durationMs,
      cycle: false,
    }),
  ),
)
const cpu = process.cpuUsage(cpuBefore)
const statuses: Record<string, number> = {}
for (const r of results) for (const [status, n] of Object.entries(r.statuses)) statuses[status] = (statuses[status] ?? 0) + n
// Each port's 202s over its own measured window, added up: the instances' combined rate.
const rate = results.reduce((sum, r) => sum + (r.measuredMs > 0 ? (r.statuses['202'] ?? 0) / (r.measuredMs / 1000) : 0), 0)
process.stdout.write(
  `${JSON.stringify({
    statuses,
    rate,
    connections: perPort * config.ports.length,
    exhausted: results.some((r) => r.exhausted),
    socketErrors: results.reduce((n, r) => n + r.socketErrors, 0),
    cpuShare: (cpu.user + cpu.system) / 1e6 / ((performance.now() - loadStart) / 1000),
  })}\n`,
)
