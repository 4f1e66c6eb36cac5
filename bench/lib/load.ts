/**
 * A hand-written HTTP/1.1 keep-alive load loop over raw sockets: each connection sends one
 * pre-built request, reads the answer (status line, Content-Length body), and sends the next.
 * Building requests up front and parsing only what is needed keeps the generator cheap, so the
 * server under test is what limits the rate.
 */
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

export interface RequestSet {
  /** Every request, head and body, back to back. */
  bytes: Buffer
  /** Start of request i is offsets[i]; its end is offsets[i + 1]. */
  offsets: number[]
}

export interface LoadOptions {
  port: number
  requests: RequestSet
  connections: number
  warmupMs: number
  durationMs: number
  /** Start again from the first request when all were sent (for targets that do not dedupe). */
  cycle?: boolean
}

export interface LoadResult {
  /** Answers by status code that completed inside the measured window. */
  statuses: Record<string, number>
  measuredMs: number
  /** True when the pre-built requests ran out before the window ended. */
  exhausted: boolean
  sent: number
  socketErrors: number
}

const HEAD_END = Buffer.from('\r\n\r\n')

class Connection {
  private socket: Socket | null = null
  private buffer: Buffer = Buffer.alloc(0)
  private pending: { resolve: (status: number) => void; reject: (err: Error) => void } | null = null

  constructor(private readonly port: number) {}

  private open(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: this.port, noDelay: true })
      let connected = false
      socket.once('connect', () => {
        connected = true
        resolve(socket)
      })
      // After connecting, an error is always followed by 'close', which fails the request in flight.
      socket.on('error', (err) => {
        if (!connected) reject(err)
      })
      socket.on('data', (chunk: Buffer) => this.onData(chunk))
      socket.on('close', () => {
        if (this.socket === socket) this.socket = null
        this.buffer = Buffer.alloc(0)
        this.pending?.reject(new Error('connection closed before the answer'))
        this.pending = null
      })
    })
  }

  async send(request: Buffer): Promise<number> {
    if (!this.socket) this.socket = await this.open()
    const socket = this.socket
    return new Promise<number>((resolve, reject) => {
      this.pending = { resolve, reject }
      socket.write(request)
    })
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    const headEnd = this.buffer.indexOf(HEAD_END)
    if (headEnd === -1) return
    const head = this.buffer.toString('latin1', 0, headEnd)
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
    if (!length?.[1]) {
      this.socket?.destroy(new Error(`answer without Content-Length: ${head.split('\r\n')[0]}`))
      return
    }
    const total = headEnd + HEAD_END.length + Number(length[1])
    if (this.buffer.length < total) return
    const status = Number(head.slice(9, 12))
    this.buffer = this.buffer.subarray(total)
    const pending = this.pending
    this.pending = null
    if (/\r\nconnection:\s*close/i.test(head)) this.socket?.destroy()
    pending?.resolve(status)
  }

  close(): void {
    this.socket?.destroy()
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { bytes, offsets } = options.requests
  const count = offsets.length - 1
  const statuses: Record<string, number> = {}
  let next = 0
  let sent = 0
  let socketErrors = 0
  let exhaustedAt: number | null = null
  const start = performance.now()
  const measureFrom = start + options.warmupMs
  const measureTo = measureFrom + options.durationMs

  const connections: Connection[] = []
  // A target that stops answering must not hang the run: 10 s after the window, drop every connection.
  const stuck = setTimeout(() => connections.forEach((c) => c.close()), options.warmupMs + options.durationMs + 10_000)
  const worker = async () => {
    const connection = new Connection(options.port)
    connections.push(connection)
    for (;;) {
      if (performance.now() >= measureTo) break
      const index = options.cycle ? next++ % count : next++
      if (index >= count) {
        exhaustedAt ??= performance.now()
        break
      }
      sent += 1
      let status: number
      try {
        status = await connection.send(bytes.subarray(offsets[index], offsets[index + 1]))
      } catch {
        socketErrors += 1
        continue
      }
      const at = performance.now()
      if (at >= measureFrom && at <= measureTo) statuses[status] = (statuses[status] ?? 0) + 1
    }
    connection.close()
  }
  await Promise.all(Array.from({ length: options.connections }, worker))
  clearTimeout(stuck)
  const end = exhaustedAt !== null ? Math.min(exhaustedAt, measureTo) : measureTo
  return { statuses, measuredMs: Math.max(0, end - measureFrom), exhausted: exhaustedAt !== null, sent, socketErrors }
}
