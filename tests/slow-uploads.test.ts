/**
 * Member files over slow links: the real app listening on loopback and raw TCP clients that send a
 * member file at a measured pace. An upload that keeps to the minimum pace outlives the request
 * timeout by far; one that goes silent, or crawls below the pace, gets 408 and is closed; every
 * other request keeps the whole-request timeout. Once with small thresholds, once at the
 * contract's real ones (§5: 16 KiB in every 10 s, 30 s of silence).
 */
import { connect, type AddressInfo, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig, type Config, type SyncUploadPace } from '../server/config.ts'
import { goodSecrets, tempDb } from './helpers/config.ts'
import { asA, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness | null = null
const clients: PacedClient[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.stop()
  await h?.close()
  h = null
})

/** The app listening on loopback with a connected Kit account; returns its port. */
async function listening(overrides: Partial<Config>): Promise<number> {
  h = await PipelineHarness.start({ config: overrides, pipeline: { autoStart: false }, connected: true })
  await h.app.listen({ host: '127.0.0.1', port: 0 })
  return (h.app.server.address() as AddressInfo).port
}

/** A CSV member file of at least `bytes` bytes, and the members in it. */
function memberFile(bytes: number): { body: Buffer; members: number } {
  const header = 'email,member_id'
  const lines = [header]
  let size = header.length + 1
  while (size < bytes) {
    const line = `member${lines.length}@example.com,m_${lines.length}`
    lines.push(line)
    size += line.length + 1
  }
  return { body: Buffer.from(`${lines.join('\n')}\n`), members: lines.length - 1 }
}

interface PacedClient {
  /** Resolves once the server closed the connection: what it answered, and when. */
  done: Promise<{ status: number; body: unknown; closedAt: number }>
  openedAt: number
  /** When the last byte was written. */
  lastSentAt: number
  /** Bytes of the body not sent (yet) when the connection closed. */
  unsent(): number
  stop(): void
}

/**
 * Sends the head and `first` bytes of the body at once, then `chunk` bytes every `everyMs` until
 * the body is out (`chunk` 0: nothing more, ever). Asks the server to close after answering.
 */
function pacedRequest(port: number, head: string, body: Buffer, pace: { first: number; chunk: number; everyMs: number }): PacedClient {
  const socket: Socket = connect({ host: '127.0.0.1', port })
  let sent = 0
  let answer = ''
  let timer: NodeJS.Timeout | null = null
  const client: PacedClient = {
    done: new Promise((resolve) => {
      socket.setEncoding('utf8')
      socket.on('data', (text: string) => {
        answer += text
      })
      socket.on('error', () => {})
      socket.on('close', () => {
        if (timer) clearInterval(timer)
        const [headPart = '', bodyPart = ''] = answer.split('\r\n\r\n')
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(headPart)?.[1] ?? 0)
        let parsed: unknown = bodyPart
        try {
          parsed = JSON.parse(bodyPart)
        } catch {
          // not JSON: kept as text
        }
        resolve({ status, body: parsed, closedAt: Date.now() })
      })
    }),
    openedAt: Date.now(),
    lastSentAt: Date.now(),
    unsent: () => body.length - sent,
    stop: () => {
      if (timer) clearInterval(timer)
      socket.destroy()
    },
  }
  const send = (bytes: number) => {
    if (socket.destroyed || sent >= body.length) return
    socket.write(body.subarray(sent, sent + bytes))
    sent = Math.min(body.length, sent + bytes)
    client.lastSentAt = Date.now()
    if (sent >= body.length && timer) clearInterval(timer)
  }
  socket.once('connect', () => {
    client.openedAt = Date.now()
    socket.write(`${head}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`)
    send(pace.first)
    if (pace.chunk > 0) timer = setInterval(() => send(pace.chunk), pace.everyMs)
  })
  clients.push(client)
  return client
}

const uploadHead = () =>
  `POST /api/v1/syncs?dry_run=true HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${asA.authorization}\r\nContent-Type: text/csv\r\n`
const mappingsHead = () =>
  `PUT /api/v1/mappings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${asA.authorization}\r\nContent-Type: application/json\r\n`
/** A JSON body the mappings route would read as a whole: what matters is how slowly it comes. */
const jsonBody = (bytes: number) => Buffer.from(JSON.stringify({ padding: 'x'.repeat(bytes) }))

const errorCode = (body: unknown) => (body as { error?: { code?: string } }).error?.code

describe('member-file uploads over slow links (small thresholds)', () => {
  const REQUEST_TIMEOUT_MS = 1000
  const pace: SyncUploadPace = { minBytes: 1024, windowMs: 500, stallMs: 1500 }

  it('keeps an upload at the minimum pace going for several request timeouts, and closes a silent or crawling one with 408; other requests keep the request timeout', async () => {
    const port = await listening({ requestTimeoutMs: REQUEST_TIMEOUT_MS, syncUpload: pace })
    const file = memberFile(12 * 1024)
    // 1 KiB every 400 ms: a little above the minimum of 1 KiB in every 500 ms, for about 5 s.
    const steady = pacedRequest(port, uploadHead(), file.body, { first: 1024, chunk: 1024, everyMs: 400 })
    const silent = pacedRequest(port, uploadHead(), file.body, { first: 1024, chunk: 0, everyMs: 0 })
    // 100 bytes every 250 ms: never silent, but a fifth of the minimum pace.
    const crawling = pacedRequest(port, uploadHead(), file.body, { first: 100, chunk: 100, everyMs: 250 })
    // The settings API's other routes: the same steady pace still runs into the request timeout.
    const mappings = pacedRequest(port, mappingsHead(), jsonBody(16 * 1024), { first: 1024, chunk: 1024, everyMs: 400 })

    const steadyEnd = await steady.done
    expect(steadyEnd.status).toBe(200)
    expect((steadyEnd.body as { accepted: number }).accepted).toBe(file.members)
    expect(steady.lastSentAt - steady.openedAt).toBeGreaterThan(3 * REQUEST_TIMEOUT_MS)

    const silentEnd = await silent.done
    expect(silentEnd.status).toBe(408)
    expect(errorCode(silentEnd.body)).toBe('request_timeout')
    expect(silentEnd.closedAt - silent.lastSentAt).toBeGreaterThanOrEqual(pace.stallMs - 50)

    const crawlingEnd = await crawling.done
    expect(crawlingEnd.status).toBe(408)
    expect(errorCode(crawlingEnd.body)).toBe('request_timeout')
    expect(crawling.unsent()).toBeGreaterThan(0)

    const mappingsEnd = await mappings.done
    expect(mappingsEnd.status).toBe(408)
    expect(mappings.unsent()).toBeGreaterThan(0)

    const after = await fetch(`http://127.0.0.1:${port}/healthz`)
    expect(after.status).toBe(200)
  }, 30_000)
})

describe('member-file uploads at the contract pace', () => {
  it('uses the contract thresholds by default: 16 KiB in every 10 s, 30 s of silence', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb(), ...goodSecrets() })
    expect(config.syncUpload).toEqual({ minBytes: 16 * 1024, windowMs: 10_000, stallMs: 30_000 })
    expect(config.requestTimeoutMs).toBe(30_000)
  })

  it('an upload sending 16 KiB every 10 s for 40 s succeeds; a silent one gets 408 after 30 s; a settings request at that pace gets 408', async () => {
    const defaults = loadConfig({ DATABASE_PATH: tempDb(), ...goodSecrets() }).config
    const port = await listening({ requestTimeoutMs: defaults.requestTimeoutMs, syncUpload: defaults.syncUpload })
    const { minBytes, windowMs, stallMs } = defaults.syncUpload
    // Exactly the minimum: one burst of 16 KiB at the start of every 10 s, five of them.
    const file = memberFile(5 * minBytes - 64)
    const steady = pacedRequest(port, uploadHead(), file.body, { first: minBytes, chunk: minBytes, everyMs: windowMs })
    const silent = pacedRequest(port, uploadHead(), file.body, { first: 1024, chunk: 0, everyMs: 0 })
    const mappings = pacedRequest(port, mappingsHead(), jsonBody(8 * minBytes), { first: minBytes, chunk: minBytes, everyMs: windowMs })

    const steadyEnd = await steady.done
    expect(steadyEnd.status).toBe(200)
    expect((steadyEnd.body as { accepted: number }).accepted).toBe(file.members)
    expect(steady.lastSentAt - steady.openedAt).toBeGreaterThan(defaults.requestTimeoutMs + windowMs / 2)

    const silentEnd = await silent.done
    expect(silentEnd.status).toBe(408)
    expect(errorCode(silentEnd.body)).toBe('request_timeout')
    expect(silentEnd.closedAt - silent.lastSentAt).toBeGreaterThanOrEqual(stallMs - 50)

    const mappingsEnd = await mappings.done
    expect(mappingsEnd.status).toBe(408)
    expect(mappings.unsent()).toBeGreaterThan(0)
  }, 90_000)
})
