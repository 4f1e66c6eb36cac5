/**
 * Member-file uploads are judged by their progress, not by the whole-request timeout: a file of
 * SYNC_MAX_BYTES over a slow link takes minutes, and that is fine while it keeps coming.
 *
 * The rule (`UploadDeadline`): an upload starts with SYNC_UPLOAD_STALL_MS of credit; every
 * SYNC_UPLOAD_MIN_BYTES that arrive earn SYNC_UPLOAD_WINDOW_MS more, never more than
 * SYNC_UPLOAD_STALL_MS ahead; when the credit runs out it is answered 408 and closed. So one that
 * keeps sending at least that many bytes in every window is never cut off (it stays at least a
 * window ahead), one that sends nothing is closed SYNC_UPLOAD_STALL_MS after its last bytes, and
 * one that trickles below the rate runs out sooner. Time in which the server had not yet read what
 * arrived (it was busy storing rows) is not held against the client.
 *
 * Node's request timeout still fires for these connections; the app's `clientError` handler leaves
 * the ones under watch alone, and handles every other client error as Fastify would, in the
 * project's error shape.
 */
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { SyncUploadPace } from '../config.ts'
import { AppError } from '../lib/errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    uploadPace: UploadPace
  }
}

export interface UploadPace {
  /** An `onRequest` hook: from now until its body has arrived, the request is judged by its progress. */
  watch(request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** An `onSend` hook: an answer given before the body arrived closes the connection after it. */
  closeIfUnread(request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Whether the connection's current request is an upload under watch. */
  covers(socket: Socket): boolean
}

/** The credit an upload has left, from the bytes that arrived; times are epoch ms. */
export class UploadDeadline {
  #deadline: number
  #checkedAt: number

  constructor(
    private readonly pace: SyncUploadPace,
    start: number,
  ) {
    this.#deadline = start + pace.stallMs
    this.#checkedAt = start
  }

  /**
   * `bytes` arrived since the last check; `serverBehind`: data was waiting for the server to read
   * it, so the time since the last check does not count. Whether the upload may go on.
   */
  check(now: number, bytes: number, serverBehind: boolean): boolean {
    const { minBytes, windowMs, stallMs } = this.pace
    let deadline = this.#deadline + (bytes * windowMs) / minBytes
    if (serverBehind) deadline += now - this.#checkedAt
    this.#deadline = Math.min(now + stallMs, deadline)
    this.#checkedAt = now
    return now < this.#deadline
  }
}

/** How often a watched upload is checked: a tenth of the window, at most once a second. */
export const checkEveryMs = (pace: SyncUploadPace) => Math.max(20, Math.min(1000, Math.floor(pace.windowMs / 10)))

const describePace = ({ minBytes, windowMs, stallMs }: SyncUploadPace) =>
  `The member file arrived too slowly (it must keep sending at least ${minBytes} bytes every ${windowMs / 1000} s, and ` +
  `nothing for ${stallMs / 1000} s closes it). Send it again over a steadier connection.`

function rawAnswer(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } })
  return (
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Cache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  )
}

const CLIENT_ERRORS: Record<string, [number, string, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'request_timeout', 'The request did not arrive in time; send it again.'],
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'headers_too_large', 'The request headers are too large.'],
}
const BAD_REQUEST: [number, string, string, string] = [400, 'Bad Request', 'bad_request', 'The request could not be read as HTTP.']

/**
 * The server's `clientError` handler (Fastify's `clientErrorHandler`): Node's whole-request timeout
 * does not apply to an upload under watch; anything else is answered as Fastify's default would,
 * in the project's error shape, and the connection closed.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && this.hasDecorator('uploadPace') && this.uploadPace.covers(socket)) return
  const [status, reason, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? BAD_REQUEST
  this.log.trace({ err }, 'client error')
  if (socket.writable) socket.write(rawAnswer(status, reason, code, message))
  socket.destroy(err)
}

export default fp(
  async (app) => {
    const pace = app.config.syncUpload
    const everyMs = checkEveryMs(pace)
    /** Watched connections, each with what stops its watch. */
    const watched = new Map<Socket, () => void>()

    const watch = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const { raw } = request
      const socket = raw.socket as Socket | undefined
      // An injected request has no connection to judge.
      if (!socket || typeof socket.bytesRead !== 'number' || raw.complete || watched.has(socket)) return
      const deadline = new UploadDeadline(pace, Date.now())
      let counted = socket.bytesRead
      const timer = setInterval(() => {
        if (raw.complete) return stop()
        const bytes = socket.bytesRead - counted
        counted += bytes
        if (deadline.check(Date.now(), bytes, raw.readableLength > 0)) return
        stop()
        request.log.info({ code: 'request_timeout', bytes: counted }, 'member file upload closed: too slow')
        const message = describePace(pace)
        if (!reply.raw.headersSent && socket.writable) socket.write(rawAnswer(408, 'Request Timeout', 'request_timeout', message))
        // The reader of the body fails with this error; the answer above is already on its way.
        raw.destroy(new AppError(408, 'request_timeout', message))
      }, everyMs)
      timer.unref()
      const stop = () => {
        clearInterval(timer)
        if (watched.get(socket) === stop) watched.delete(socket)
      }
      watched.set(socket, stop)
      reply.raw.once('close', stop)
    }

    app.decorate('uploadPace', {
      watch,
      closeIfUnread: async (request, reply) => {
        if (!request.raw.complete) reply.header('connection', 'close')
      },
      covers: (socket) => watched.has(socket),
    })
    app.addHook('onClose', async () => {
      for (const stop of [...watched.values()]) stop()
    })
  },
  { name: 'upload-pace', dependencies: ['config'] },
)
