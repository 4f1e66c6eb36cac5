/**
 * A switchable HTTP proxy in front of the Kit stand-in, for the blackout drill. In `pass` mode
 * it forwards every request; in `down` mode it answers in turn 503 with an HTML page, 502 with
 * JSON, and a dropped connection — the ways an unavailable Kit shows itself.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface KitProxy {
  url: string
  setDown(down: boolean): void
  /** Requests refused while down, by kind. */
  refused: { html503: number; json502: number; dropped: number }
  close(): Promise<void>
}

export async function startKitProxy(target: string): Promise<KitProxy> {
  const upstream = new URL(target)
  let down = false
  let turn = 0
  const refused = { html503: 0, json502: 0, dropped: 0 }

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const outgoing = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    outgoing.on('error', () => res.destroy())
    req.pipe(outgoing)
  }

  const refuse = (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    const kind = turn++ % 3
    if (kind === 0) {
      refused.html503 += 1
      res.writeHead(503, { 'content-type': 'text/html' })
      res.end('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>')
    } else if (kind === 1) {
      refused.json502 += 1
      res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ errors: ['Bad gateway'] }))
    } else {
      refused.dropped += 1
      req.socket.destroy()
    }
  }

  const server = createServer((req, res) => (down ? refuse(req, res) : forward(req, res)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    setDown(value) {
      down = value
    },
    refused,
    async close() {
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
      server.closeAllConnections()
      await closed
    },
  }
}
