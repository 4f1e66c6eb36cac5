/**
 * The events recorded while no Kit account was connected: how many there are (counted by the
 * server), and sending them all, a call at a time while the server says some remain.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { ReplayableDeliveries } from '#shared/api.ts'
import { api } from '../api/index.ts'
import { ApiError, toApiError } from '../api/client.ts'
import { plural } from '../lib/format.ts'
import { useDeliveriesStore } from './deliveries.ts'
import { useSessionStore } from './session.ts'

/** A replay sends at most this many calls' worth (each queues up to 10,000); the rest is offered again. */
export const MAX_REPLAY_CALLS = 20

export const useReplayStore = defineStore('replay', () => {
  const session = useSessionStore()
  const deliveries = useDeliveriesStore()

  const offer = ref<ReplayableDeliveries | null>(null)
  const loadError = ref<ApiError | null>(null)
  const sending = ref(false)
  /** Queued so far by the replay under way, and how many it set out to send. */
  const queued = ref(0)
  const total = ref(0)
  const result = ref('')
  const sendError = ref<ApiError | null>(null)

  async function load(): Promise<void> {
    try {
      offer.value = await api.countReplayable()
      loadError.value = null
    } catch (err) {
      loadError.value = toApiError(err)
    }
  }

  async function send(): Promise<void> {
    if (sending.value || !offer.value?.count) return
    sending.value = true
    sendError.value = null
    result.value = ''
    queued.value = 0
    total.value = offer.value.count
    try {
      for (let call = 0; call < MAX_REPLAY_CALLS; call++) {
        const answer = await api.replayNotConnected()
        queued.value += answer.queued
        total.value = queued.value + answer.remaining
        void deliveries.refresh()
        if (answer.remaining === 0 || answer.queued === 0) break
      }
      result.value = `${plural(queued.value, 'event', 'events')} on the way to Kit, oldest first. Activity shows each one as it is sent.`
      session.toast(`${plural(queued.value, 'recorded event', 'recorded events')} on the way to Kit.`, 'success')
    } catch (err) {
      sendError.value = toApiError(err)
      if (queued.value > 0) result.value = `${plural(queued.value, 'event', 'events')} on the way to Kit before this stopped.`
    } finally {
      sending.value = false
    }
    await load()
  }

  return { offer, loadError, sending, queued, total, result, sendError, load, send }
})
