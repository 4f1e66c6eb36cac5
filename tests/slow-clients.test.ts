/**
 * Slow clients: the real app listening on loopback with short timeouts, and hundreds of raw TCP
 * sockets that stall or trickle their request. The server must close every one of them near its
 * request deadline and keep answering normal requests meanwhile.
 */
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from './helpers/app.ts'

const SLOW_SOCKETS = 400
const REQUEST_TIMEOUT_MS = 1000
/** Deadline plus the server's check interval plus generous slack for a loaded machine. */
const CLOSED_WITHIN_MS = 4000
const TRICKLE_EVERY_MS = 150

interface SlowClient {
  socket: Socket
  openedAt: number
  closedAt: number | null
  silent: boolean
  /** What is left to send, one byte per tick. */
  pending: string
  answer: string
}

let testApp: TestApp | null = null
const clients: SlowClient[] = []
let trickle: NodeJS.Timeout | null = null

afterEach(async () => {
  if (trickle) clearInterval(trickle)
  trickle = null
  for (const client of clients.splice(0)) client.socket.destroy()
  await testApp?.app.close()
  testApp = null
})

/** Three ways to be slow: a head that never ends, a body that never ends, and nothing at all. */
function slowRequest(index: number): { first: string; rest: string } {
  switch (index % 3) {
    case 0:
      return { first: 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', rest: 'X-Slow: '.padEnd(4000, 'a') }
    case 1: {
      const body = JSON.stringify({ id: `evt_${index}`, padding: 'x'.repeat(2000) })
      const head = `POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
      return { first: head, rest: body }
    }
    default:
      return { first: '', rest: '' }
  }
}

function openSlowClient(port: number, index: number): Promise<SlowClient> {
  const { first, rest } = slowRequest(index)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    const client: SlowClient = { socket, openedAt: 0, closedAt: null, silent: first === '', pending: rest, answer: '' }
    clients.push(client)
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      client.answer += chunk
    })
    socket.on('error', () => {
      client.closedAt ??= Date.now()
    })
    socket.on('close', () => {
      client.closedAt ??= Date.now()
    })
    socket.once('connect', () => {
      client.openedAt = Date.now()
      if (first !== '') socket.write(first)
      resolve(client)
    })
    socket.once('error', reject)
  })
}

function sendNextByte(client: SlowClient): void {
  if (client.closedAt !== null || client.pending === '' || client.socket.destroyed) return
  client.socket.write(client.pending.slice(0, 1))
  client.pending = client.pending.slice(1)
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('slow clients', () => {
  it('gives every request 30 s to arrive by default, idle sockets two minutes and keep-alive 10 s', async () => {
    testApp = await buildTestApp()
    const server = testApp.app.server
    expect(server.requestTimeout).toBe(30_000)
    expect(server.headersTimeout).toBe(30_000)
    expect(server.timeout).toBe(120_000)
    expect(server.keepAliveTimeout).toBe(10_000)
  })

  it("answers a request it cannot read as HTTP, or with headers too large, in the project's error shape and closes the connection", async () => {
    testApp = await buildTestApp()
    await testApp.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = testApp.app.server.address() as AddressInfo
    const exchange = (request: string) =>
      new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port }, () => socket.end(request))
        let answer = ''
        socket.setEncoding('utf8')
        socket.on('data', (chunk: string) => {
          answer += chunk
        })
        socket.on('error', () => {})
        socket.on('close', () => resolve(answer))
      })
    const garbled = await exchange('NOT HTTP AT ALL\r\n\r\n')
    expect(garbled).toMatch(/^HTTP\/1\.1 400 /)
    expect(JSON.parse(garbled.split('\r\n\r\n')[1] ?? '')).toMatchObject({ error: { code: 'bad_request' } })
    const oversized = await exchange(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(oversized).toMatch(/^HTTP\/1\.1 431 /)
    expect(JSON.parse(oversized.split('\r\n\r\n')[1] ?? '')).toMatchObject({ error: { code: 'headers_too_large' } })
  })

  it(`closes ${SLOW_SOCKETS} stalled or trickling connections near the request deadline and keeps serving others`, async () => {
    testApp = await buildTestApp({
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      connectionTimeoutMs: 60_000,
      keepAliveTimeoutMs: 1000,
    })
    await testApp.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = testApp.app.server.address() as AddressInfo

    for (let start = 0; start < SLOW_SOCKETS; start += 50) {
      const batch = Array.from({ length: Math.min(50, SLOW_SOCKETS - start) }, (_, i) => openSlowClient(port, start + i))
      await Promise.all(batch)
    }
    trickle = setInterval(() => clients.forEach(sendNextByte), TRICKLE_EVERY_MS)

    const stillOpen = () => clients.filter((c) => c.closedAt === null).length
    expect(stillOpen()).toBe(SLOW_SOCKETS)

    const normal = await fetch(`http://127.0.0.1:${port}/healthz`)
    expect(normal.status).toBe(200)
    expect(await normal.json()).toEqual({ status: 'ok' })
    expect(stillOpen()).toBeGreaterThan(0)

    await waitUntil(() => stillOpen() === 0, CLOSED_WITHIN_MS + 1000)
    expect(stillOpen()).toBe(0)
    const lifetimes = clients.map((c) => (c.closedAt ?? Number.POSITIVE_INFINITY) - c.openedAt)
    expect(Math.max(...lifetimes)).toBeLessThanOrEqual(CLOSED_WITHIN_MS)
    expect(clients.filter((c) => !c.silent && c.pending === '')).toEqual([])
    const timedOut = clients.filter((c) => c.answer.startsWith('HTTP/1.1 408'))
    expect(timedOut.length).toBeGreaterThan(0)
    for (const client of timedOut)
      expect(JSON.parse(client.answer.split('\r\n\r\n')[1] ?? '')).toMatchObject({ error: { code: 'request_timeout' } })

    const after = await fetch(`http://127.0.0.1:${port}/healthz`)
    expect(after.status).toBe(200)
  }, 20_000)
})
