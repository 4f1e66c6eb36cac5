/**
 * The panel's side of the `appstation.v1` postMessage protocol. It only ever talks to
 * `window.parent` at the one allowed origin, answers nothing, and ignores every message that is not
 * a well-formed reply from that window. Outside an iframe it is a no-op.
 */
import {
  HOST_PROTOCOL,
  isHostMessage,
  type HostContext,
  type HostMessage,
  type HostMessageType,
  type HostPayloads,
} from '#shared/host-protocol.ts'
import { uuid } from './uuid.ts'

export type HandshakeAck = HostPayloads['handshake.ack']

export interface HostBridge {
  /** True when the panel sits in a frame and knows which origin it may talk to. */
  readonly embedded: boolean
  handshake(pluginVersion: string): Promise<HandshakeAck>
  requestToken(): Promise<string>
  send<T extends HostMessageType>(type: T, payload: HostPayloads[T]): void
  dispose(): void
}

export interface BridgeOptions {
  win: Window
  allowedOrigin: string | null
  /** How long to wait for the host's reply before giving up. */
  timeoutMs?: number
}

export class HostUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'HostUnavailableError'
  }
}

interface Pending {
  expect: HostMessageType
  resolve: (message: HostMessage) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
}

const isString = (value: unknown): value is string => typeof value === 'string' && value !== ''

function isContext(value: unknown): value is HostContext {
  if (typeof value !== 'object' || value === null) return false
  const c = value as Record<string, unknown>
  return isString(c.cid) && typeof c.locale === 'string' && (c.theme === 'light' || c.theme === 'dark')
}

/** Checks the payload of the two messages the panel accepts. */
function validPayload(message: HostMessage): boolean {
  const p = message.payload as Record<string, unknown>
  if (message.type === 'handshake.ack') return isString(p.token) && isContext(p.context)
  if (message.type === 'token.response') return isString(p.token)
  return false
}

export function createHostBridge({ win, allowedOrigin, timeoutMs = 10_000 }: BridgeOptions): HostBridge {
  const embedded = win.parent !== win && allowedOrigin !== null
  const pending = new Map<string, Pending>()

  function post<T extends HostMessageType>(type: T, payload: HostPayloads[T]): string {
    const message: HostMessage<T> = { protocol: HOST_PROTOCOL, id: uuid(), type, payload }
    if (embedded && allowedOrigin) win.parent.postMessage(message, allowedOrigin)
    return message.id
  }

  function onMessage(event: MessageEvent): void {
    if (event.origin !== allowedOrigin || event.source !== win.parent) return
    const message: unknown = event.data
    if (!isHostMessage(message) || message.replyTo === undefined) return
    const waiting = pending.get(message.replyTo)
    if (!waiting || waiting.expect !== message.type || !validPayload(message)) return
    pending.delete(message.replyTo)
    clearTimeout(waiting.timer)
    waiting.resolve(message)
  }

  function request<T extends HostMessageType, R extends HostMessageType>(
    type: T,
    payload: HostPayloads[T],
    expect: R,
  ): Promise<HostPayloads[R]> {
    if (!embedded) return Promise.reject(new HostUnavailableError('The panel is not embedded in App Station.'))
    return new Promise((resolve, reject) => {
      const id = post(type, payload)
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new HostUnavailableError(`App Station did not answer ${type}.`))
      }, timeoutMs)
      pending.set(id, {
        expect,
        timer,
        reject,
        resolve: (message) => resolve(message.payload as HostPayloads[R]),
      })
    })
  }

  if (embedded) win.addEventListener('message', onMessage)

  return {
    embedded,
    handshake: (pluginVersion) => request('handshake.request', { pluginVersion }, 'handshake.ack'),
    requestToken: () => request('token.request', {}, 'token.response').then((p) => p.token),
    send(type, payload) {
      post(type, payload)
    },
    dispose() {
      win.removeEventListener('message', onMessage)
      for (const waiting of pending.values()) {
        clearTimeout(waiting.timer)
        waiting.reject(new HostUnavailableError('The bridge was closed.'))
      }
      pending.clear()
    },
  }
}
