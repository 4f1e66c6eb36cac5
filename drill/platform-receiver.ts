/**
 * A switchable stand-in for App Station's receiver of platform events, for the receiver drill. It
 * checks every request's Standard Webhooks signature with the shared secret (the reference
 * implementation, as App Station would) and records each arrival. In `up` mode it answers 204; in
 * `unavailable` mode 503; in `refusing` mode it does not listen at all (the listener is closed and
 * every open connection cut), so a POST meets a refused connection — the two ways a receiver that
 * is down shows itself. It listens on the same port throughout.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export type ReceiverMode = 'up' | 'unavailable' | 'refusing'

export interface Arrival {
  at: number
  /** The `webhook-id` header. */
  id: string
  verified: boolean
  raw: string
  /** The CloudEvent as parsed; null when the body is not a JSON object. */
  body: Record<string, unknown> | null
  /** What the receiver answered. */
  status: number
}

export interface DrillReceiver {
  url: string
  secret: string
  mode: () => ReceiverMode
  /** Every request that reached the receiver, in order. */
  arrivals: Arrival[]
  setMode(mode: ReceiverMode): Promise<void>
  close(): Promise<void>
}

export async function startDrillReceiver(): Promise<DrillReceiver> {
  const secret = `whsec_${randomBytes(24).toString('base64')}`
  const webhook = new Webhook(secret)
  const arrivals: Arrival[] = []
  let mode: ReceiverMode = 'up'

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    let verified = true
    try {
      webhook.verify(raw, req.headers as Record<string, string>)
    } catch {
      verified = false
    }
    const status = !verified ? 401 : mode === 'up' ? 204 : 503
    arrivals.push({ at: Date.now(), id: String(req.headers['webhook-id']), verified, raw, body: parseEvent(raw), status })
    res.writeHead(status).end()
  }

  const server = createServer((req, res) => void handle(req, res))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo

  const listening = () => server.listening
  const stopListening = async () => {
    const closed = once(server, 'close')
    server.close()
    server.closeAllConnections()
    await closed
  }

  return {
    url: `http://127.0.0.1:${port}/kit-events`,
    secret,
    mode: () => mode,
    arrivals,
    async setMode(next) {
      mode = next
      if (next === 'refusing' && listening()) await stopListening()
      if (next !== 'refusing' && !listening()) {
        server.listen(port, '127.0.0.1')
        await once(server, 'listening')
      }
    },
    async close() {
      if (listening()) await stopListening()
    },
  }
}

function parseEvent(raw: string): Arrival['body'] {
  try {
    const parsed: unknown = JSON.parse(raw)
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null
  } catch {
    return null
  }
}
