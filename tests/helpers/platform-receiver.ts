/**
 * A stand-in for App Station's receiver of platform events (contract §7): a real HTTP server on
 * loopback that checks every request's Standard Webhooks signature with the shared secret, using
 * the reference implementation, and records what arrived. `answer` decides each reply: a status,
 * `hang` (never answers) or `drop` (closes the socket).
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { afterAll, afterEach, beforeAll } from 'vitest'

export interface Received {
  id: string
  contentType: string | undefined
  verified: boolean
  raw: string
  body: Record<string, unknown> & { id: string; type: string; subject?: string; data: Record<string, unknown> }
}

export type Answer = number | 'hang' | 'drop'

export interface PlatformReceiver {
  url: string
  secret: string
  received: Received[]
  /** Verified events answered 2xx, by id (the first time each). */
  accepted: () => Received[]
  answer: (request: Received, n: number) => Answer
  /** Forgets what arrived and answers 204 again. */
  reset(): void
  close(): Promise<void>
}

export const newPlatformSecret = () => `whsec_${randomBytes(24).toString('base64')}`

export async function startPlatformReceiver(secret = newPlatformSecret()): Promise<PlatformReceiver> {
  const { receiver, listen } = platformReceiver(secret)
  await listen()
  return receiver
}

/**
 * One receiver for the tests of a file (or of a describe block): listening before the first,
 * forgetting what arrived after each (once `afterEachTest` has closed what the test started), and
 * closed after the last.
 */
export function receiverForTests(afterEachTest: () => Promise<void> = async () => {}): PlatformReceiver {
  const { receiver, listen } = platformReceiver(newPlatformSecret())
  beforeAll(listen)
  afterEach(async () => {
    await afterEachTest()
    receiver.reset()
  })
  afterAll(() => receiver.close())
  return receiver
}

/** The receiver, its url set once `listen` resolves. */
function platformReceiver(secret: string): { receiver: PlatformReceiver; listen: () => Promise<void> } {
  const webhook = new Webhook(secret)
  const received: Received[] = []
  const acceptedIds = new Map<string, Received>()
  const hanging = new Set<ServerResponse>()
  const receiver: PlatformReceiver = {
    url: '',
    secret,
    received,
    accepted: () => [...acceptedIds.values()],
    answer: () => 204,
    reset: () => {
      received.length = 0
      acceptedIds.clear()
      receiver.answer = () => 204
    },
    close: async () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    let verified = true
    try {
      webhook.verify(raw, req.headers as Record<string, string>)
    } catch {
      verified = false
    }
    const entry: Received = {
      id: String(req.headers['webhook-id']),
      contentType: req.headers['content-type'],
      verified,
      raw,
      body: JSON.parse(raw),
    }
    received.push(entry)
    const answer = verified ? receiver.answer(entry, received.length) : 401
    if (answer === 'hang') {
      hanging.add(res)
      return
    }
    if (answer === 'drop') {
      res.destroy()
      return
    }
    if (answer >= 200 && answer < 300 && !acceptedIds.has(entry.id)) acceptedIds.set(entry.id, entry)
    res.writeHead(answer).end()
  }
  const server = createServer((req, res) => void handle(req, res))
  const listen = async () => {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/kit-events`
  }
  return { receiver, listen }
}
