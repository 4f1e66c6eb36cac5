/**
 * A loopback proxy in front of the Kit stand-in that can hold requests: while paused, requests
 * wait (as if Kit were slow to answer); on resume, the held ones are forwarded. A request whose
 * caller gave up is still forwarded, as a slow Kit would still apply it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface PausableProxy {
  url: string
  /** Requests currently held. */
  held(): number
  pause(): void
  resume(): void
  close(): Promise<void>
}

export async function startPausableProxy(target: string): Promise<PausableProxy> {
  let paused = false
  let waiting: (() => void)[] = []
  let holding = 0

  const forward = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name)) headers[name] = value
    }
    const answer = await fetch(`${target}${req.url ?? '/'}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body.length > 0 ? { body: new Uint8Array(body) } : {}),
    })
    const text = await answer.text()
    if (res.destroyed) return
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' })
    res.end(text)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const go = () => {
        forward(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
          if (!res.destroyed) res.destroy(err instanceof Error ? err : new Error(String(err)))
        })
      }
      if (!paused) return go()
      holding += 1
      waiting.push(() => {
        holding -= 1
        go()
      })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    held: () => holding,
    pause: () => {
      paused = true
    },
    resume: () => {
      paused = false
      const go = waiting
      waiting = []
      for (const release of go) release()
    },
    async close() {
      const closed = once(server, 'close')
      server.close()
      server.closeAllConnections()
      await closed
    },
  }
}
