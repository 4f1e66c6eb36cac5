/**
 * The intake load generator, run as its own process: pre-signs every event before the clock
 * starts, then drives 32 keep-alive connections at the target (see lib/load.ts) and prints one
 * JSON line with the result. Configured by LOADGEN (JSON): port, hmacKey, count, connections,
 * warmupMs, durationMs, cycle (reuse the requests: only for a target that does not dedupe).
 */
import { performance } from 'node:perf_hooks'
import { event, member, signedHeaders } from './lib/events.ts'
import { runLoad, type RequestSet } from './lib/load.ts'

interface LoadgenConfig {
  port: number
  hmacKey: string
  count: number
  connections: number
  warmupMs: number
  durationMs: number
  cycle: boolean
}

function presign(config: LoadgenConfig): RequestSet {
  const timestamp = Math.floor(Date.now() / 1000)
  const parts: Buffer[] = []
  const offsets = [0]
  let length = 0
  const now = Date.now()
  for (let i = 0; i < config.count; i++) {
    const e = event(member('c_intake', 'intake', i), 'user.signed_up', now + i)
    const body = JSON.stringify(e)
    const headers = signedHeaders(config.hmacKey, e.id, body, timestamp)
    const head =
      `POST /events HTTP/1.1\r\nhost: 127.0.0.1:${config.port}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      Object.entries(headers)
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

const config = JSON.parse(process.env.LOADGEN ?? '') as LoadgenConfig
const t0 = performance.now()
const requests = presign(config)
const presignMs = performance.now() - t0
process.stdout.write('presigned\n')
const cpuBefore = process.cpuUsage()
const loadStart = performance.now()
const result = await runLoad({
  port: config.port,
  requests,
  connections: config.connections,
  warmupMs: config.warmupMs,
  durationMs: config.durationMs,
  cycle: config.cycle,
})
const cpu = process.cpuUsage(cpuBefore)
const loadSeconds = (performance.now() - loadStart) / 1000
process.stdout.write(
  `${JSON.stringify({ ...result, presignMs, presigned: config.count, cpuShare: (cpu.user + cpu.system) / 1e6 / loadSeconds })}\n`,
)
