/** The `appstation.v1` postMessage protocol between App Station (host) and the panel. */
export const HOST_PROTOCOL = 'appstation.v1'

export interface HostContext {
  cid: string
  locale: string
  theme: 'light' | 'dark'
}

export interface HostPayloads {
  'handshake.request': { pluginVersion: string }
  'handshake.ack': { token: string; context: HostContext }
  'token.request': Record<string, never>
  'token.response': { token: string }
  'ui.resize': { height: number }
  'ui.toast': { message: string; variant: 'success' | 'error' | 'info' }
  'ui.dirty': { dirty: boolean }
}

export type HostMessageType = keyof HostPayloads

export interface HostMessage<T extends HostMessageType = HostMessageType> {
  protocol: typeof HOST_PROTOCOL
  id: string
  type: T
  payload: HostPayloads[T]
  replyTo?: string
}

export function isHostMessage(value: unknown): value is HostMessage {
  if (typeof value !== 'object' || value === null) return false
  const m = value as Record<string, unknown>
  return (
    m.protocol === HOST_PROTOCOL &&
    typeof m.id === 'string' &&
    typeof m.type === 'string' &&
    typeof m.payload === 'object' &&
    m.payload !== null &&
    (m.replyTo === undefined || typeof m.replyTo === 'string')
  )
}
