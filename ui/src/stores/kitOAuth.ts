/**
 * Connect with Kit from the panel. Kit refuses to be framed, so its consent page opens in a popup,
 * opened at once from the click (a popup opened later is blocked) and sent to Kit once the server
 * has made the authorization. The popup ends on the plugin's callback page, which posts the outcome
 * (never a token) to this panel's own origin; only that message, from that popup, is believed.
 * A popup closed without one is asked about by reloading the connection.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { OAuthResultMessage } from '#shared/api.ts'
import { OAUTH_MESSAGE_TYPE, oauthFailureWords } from '#shared/oauth.ts'
import { api } from '../api/index.ts'
import { toApiError } from '../api/client.ts'
import { useConnectionStore } from './connection.ts'
import { useSessionStore } from './session.ts'

export const POPUP_BLOCKED = 'Allow pop-ups for App Station, or use an API key instead.'
export const CANCELLED = 'Connection cancelled.'

/** How often the panel looks whether the popup was closed. */
const CLOSED_CHECK_MS = 500

const isResult = (data: unknown): data is OAuthResultMessage =>
  typeof data === 'object' && data !== null && (data as { type?: unknown }).type === OAUTH_MESSAGE_TYPE

export const useKitOAuthStore = defineStore('kitOAuth', () => {
  const connection = useConnectionStore()
  const session = useSessionStore()

  /** Kit's page is open in the popup (or about to be). */
  const waiting = ref(false)
  const error = ref<string | null>(null)
  let stop: (() => void) | null = null

  /** The outcome of one popup: its message, or its being closed without one. */
  function outcome(popup: Window): Promise<OAuthResultMessage | null> {
    return new Promise((resolve) => {
      const onMessage = (event: MessageEvent): void => {
        if (event.origin !== window.location.origin || event.source !== popup || !isResult(event.data)) return
        finish({
          type: OAUTH_MESSAGE_TYPE,
          ok: event.data.ok === true,
          ...(typeof event.data.code === 'string' ? { code: event.data.code } : {}),
        })
      }
      const timer = window.setInterval(() => {
        if (popup.closed) finish(null)
      }, CLOSED_CHECK_MS)
      const finish = (result: OAuthResultMessage | null): void => {
        window.removeEventListener('message', onMessage)
        window.clearInterval(timer)
        stop = null
        resolve(result)
      }
      stop = () => finish(null)
      window.addEventListener('message', onMessage)
    })
  }

  /** Must be called from the click itself: the popup opens before anything is awaited. */
  async function connect(installCode?: string): Promise<boolean> {
    error.value = null
    stop?.()
    const popup = window.open('', 'kit-oauth', 'popup,width=600,height=760')
    if (!popup) {
      error.value = POPUP_BLOCKED
      return false
    }
    waiting.value = true
    try {
      const { authorize_url } = await api.startKitOAuth(installCode ? { install_code: installCode } : {})
      popup.location.href = authorize_url
    } catch (failure) {
      popup.close()
      waiting.value = false
      error.value = toApiError(failure).message
      return false
    }
    const result = await outcome(popup)
    waiting.value = false
    const before = connection.connection?.updated_at ?? null
    await connection.load()
    const now = connection.connection
    // Closed without a word (the message may not make it back): the connection itself says.
    const connected = result ? result.ok : now?.kind === 'oauth' && now.status === 'connected' && now.updated_at !== before
    if (!connected) {
      error.value = result ? oauthFailureWords(result.code) : CANCELLED
      return false
    }
    connection.noteKitAnswered()
    session.toast(`Connected to Kit${now?.account ? ` as ${now.account.name}` : ''}.`, 'success')
    return true
  }

  return { waiting, error, connect }
})
