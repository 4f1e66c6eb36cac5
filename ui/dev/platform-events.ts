/**
 * The local App Station's view of what the plugin told it (contract §7): the events its receiver
 * at /dev/platform-events took, newest first, read again every few seconds. Development only.
 */
import type { ReceivedPlatformEvent, ReceivedPlatformEvents } from '#shared/dev-platform-events.ts'

const POLL_MS = 2000

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

function item(received: ReceivedPlatformEvent): HTMLLIElement {
  const li = document.createElement('li')
  li.dataset.eventId = received.id
  const title = document.createElement('strong')
  title.textContent = received.type ?? '(no type)'
  const meta = document.createElement('div')
  meta.className = 'muted'
  const repeats = received.deliveries > 1 ? ` · delivered ${received.deliveries} times (one event)` : ''
  meta.textContent = `${new Date(received.last_received_at).toLocaleTimeString()} · ${received.communityid ?? '?'} · ${received.subject ?? 'no subject'}${repeats}`
  const details = document.createElement('details')
  const summary = document.createElement('summary')
  summary.textContent = received.id
  const body = document.createElement('pre')
  body.textContent = JSON.stringify(received.event, null, 2)
  details.append(summary, body)
  li.append(title, meta, details)
  return li
}

export function watchPlatformEvents(): void {
  const list = $<HTMLOListElement>('told')
  const status = $<HTMLParagraphElement>('told-status')
  let shown = ''

  async function read(): Promise<void> {
    try {
      const response = await fetch('/dev/api/platform-events', { headers: { accept: 'application/json' } })
      if (!response.ok) throw new Error(`answered ${response.status}`)
      const listing = (await response.json()) as ReceivedPlatformEvents
      status.textContent = listing.configured
        ? `${listing.items.length} received at ${listing.url}. Unsubscribe someone in the Kit stand-in to see it arrive.`
        : 'Not receiving: the server has no PLATFORM_EVENTS_URL and PLATFORM_EVENTS_SECRET (npm run start:offline sets them).'
      const fingerprint = listing.items.map((r) => `${r.id}:${r.deliveries}`).join('|')
      if (fingerprint === shown) return
      shown = fingerprint
      list.replaceChildren(...listing.items.map(item))
    } catch (error) {
      status.textContent = `Could not read the received events (${(error as Error).message}).`
    }
  }

  $<HTMLButtonElement>('told-clear').addEventListener('click', () => {
    void fetch('/dev/api/platform-events', { method: 'DELETE' }).then(
      () => read(),
      () => read(),
    )
  })
  void read()
  setInterval(() => void read(), POLL_MS)
}
