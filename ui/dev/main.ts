/**
 * The local App Station: the host side of the `appstation.v1` protocol around the panel iframe,
 * session switches (community, role, theme) and an event simulator. Development only.
 */
import { EVENT_TYPES } from '#shared/events.ts'
import { HOST_PROTOCOL, isHostMessage, type HostMessage, type HostMessageType, type HostPayloads } from '#shared/host-protocol.ts'
import './dev.css'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

const iframe = $<HTMLIFrameElement>('panel')
const cidSelect = $<HTMLSelectElement>('cid')
const roleSelect = $<HTMLSelectElement>('role')
const themeSelect = $<HTMLSelectElement>('theme')
const dirtyBadge = $<HTMLSpanElement>('dirty')
const toasts = $<HTMLDivElement>('toasts')
const log = $<HTMLOListElement>('log')
const simForm = $<HTMLFormElement>('simulate')
const simType = $<HTMLSelectElement>('sim-type')

const origin = window.location.origin
const panelUrl = new URL('../panel/', window.location.href).href
let dirty = false
let current = { cid: cidSelect.value, role: roleSelect.value, theme: themeSelect.value }

interface DevToken {
  token: string
  expires_in: number
}

async function postJson<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(new URL(path, origin), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T }
}

async function mintToken(): Promise<string> {
  const answer = await postJson<DevToken>('/dev/api/token', {
    cid: current.cid,
    roles: [current.role],
    sub: `u_dev_${current.role}`,
  })
  if (answer.status !== 200 || !answer.body?.token) throw new Error(`the dev token endpoint answered ${answer.status}`)
  return answer.body.token
}

function note(direction: '→' | '←', type: string, detail = ''): void {
  const item = document.createElement('li')
  item.textContent = `${new Date().toLocaleTimeString()} ${direction} ${type}${detail ? ` ${detail}` : ''}`
  log.prepend(item)
  while (log.children.length > 40) log.lastElementChild?.remove()
}

function toast(message: string, variant: string): void {
  const item = document.createElement('p')
  item.className = `toast toast-${variant}`
  item.textContent = message
  toasts.append(item)
  setTimeout(() => item.remove(), 5000)
}

function setDirty(value: boolean): void {
  dirty = value
  dirtyBadge.hidden = !value
}

function reply<T extends HostMessageType>(to: HostMessage, type: T, payload: HostPayloads[T]): void {
  const message: HostMessage<T> = { protocol: HOST_PROTOCOL, id: crypto.randomUUID(), type, payload, replyTo: to.id }
  iframe.contentWindow?.postMessage(message, origin)
  note('→', type)
}

async function onMessage(event: MessageEvent): Promise<void> {
  if (event.origin !== origin || event.source !== iframe.contentWindow || !isHostMessage(event.data)) return
  const message = event.data
  const payload = message.payload as Record<string, unknown>
  note('←', message.type, message.type === 'ui.resize' ? String(payload.height) : '')
  switch (message.type) {
    case 'handshake.request':
      try {
        const token = await mintToken()
        const theme = current.theme === 'dark' ? 'dark' : 'light'
        reply(message, 'handshake.ack', { token, context: { cid: current.cid, locale: 'en', theme } })
      } catch (error) {
        toast(`Could not sign the panel in: ${(error as Error).message}`, 'error')
      }
      break
    case 'token.request':
      try {
        reply(message, 'token.response', { token: await mintToken() })
      } catch (error) {
        toast(`Could not refresh the token: ${(error as Error).message}`, 'error')
      }
      break
    case 'ui.resize':
      if (typeof payload.height === 'number' && payload.height > 0) iframe.style.height = `${Math.ceil(payload.height)}px`
      break
    case 'ui.toast':
      if (typeof payload.message === 'string') toast(payload.message, typeof payload.variant === 'string' ? payload.variant : 'info')
      break
    case 'ui.dirty':
      setDirty(payload.dirty === true)
      break
    default:
      break
  }
}

function loadPanel(): void {
  setDirty(false)
  document.documentElement.dataset.theme = current.theme
  iframe.src = `${panelUrl}?reload=${Date.now()}`
}

function onSessionChange(): void {
  const next = { cid: cidSelect.value, role: roleSelect.value, theme: themeSelect.value }
  if (dirty && !window.confirm('The Kit panel has unsaved changes. Switch anyway and lose them?')) {
    cidSelect.value = current.cid
    roleSelect.value = current.role
    themeSelect.value = current.theme
    return
  }
  current = next
  loadPanel()
}

function parseFields(text: string): Record<string, string | null> | undefined {
  const fields: Record<string, string | null> = {}
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed) continue
    const eq = trimmed.indexOf('=')
    const key = (eq < 0 ? trimmed : trimmed.slice(0, eq)).trim()
    const value = eq < 0 ? '' : trimmed.slice(eq + 1).trim()
    fields[key] = value === '' ? null : value
  }
  return Object.keys(fields).length > 0 ? fields : undefined
}

async function simulate(event: SubmitEvent): Promise<void> {
  event.preventDefault()
  const data = new FormData(simForm)
  const entry = (name: string) => {
    const value = data.get(name)
    return typeof value === 'string' ? value : ''
  }
  const text = (name: string) => entry(name).trim()
  const type = text('type')
  const fields = parseFields(entry('fields'))
  const body: Record<string, unknown> = {
    cid: current.cid,
    type,
    member: {
      id: text('member_id'),
      email: text('email'),
      ...(text('first_name') ? { first_name: text('first_name') } : {}),
      ...(fields ? { fields } : {}),
    },
  }
  if (type.startsWith('subscription.')) {
    body.subscription = {
      id: text('subscription_id'),
      plan: text('plan'),
      status: type === 'subscription.canceled' ? 'canceled' : 'active',
    }
  }
  if (type.startsWith('access.')) body.access = { level: text('level') }

  const status = $<HTMLParagraphElement>('sim-status')
  const answer = $<HTMLPreElement>('sim-answer')
  status.textContent = `Sending ${type} for ${current.cid}…`
  answer.textContent = ''
  try {
    const result = await postJson<{ status: number; body: unknown }>('/dev/api/simulate', body)
    if (result.status !== 200) {
      status.textContent = `The simulator answered ${result.status}.`
      answer.textContent = JSON.stringify(result.body, null, 2)
      return
    }
    status.textContent = `/events answered ${result.body.status}.`
    answer.textContent = JSON.stringify(result.body.body, null, 2)
  } catch (error) {
    status.textContent = `Could not send the event: ${(error as Error).message}`
  }
}

async function showInfo(): Promise<void> {
  const info = $<HTMLParagraphElement>('info')
  try {
    const response = await fetch(new URL('/dev/api/info', origin), { headers: { accept: 'application/json' } })
    if (!response.ok) throw new Error(`answered ${response.status}`)
    const body = (await response.json()) as { origin: string; plugin_id: string; kit_api_url: string }
    info.textContent = `Origin ${body.origin} · plugin ${body.plugin_id} · Kit API ${body.kit_api_url}`
  } catch (error) {
    info.textContent = `Dev info unavailable (${(error as Error).message}).`
  }
}

for (const type of EVENT_TYPES) simType.add(new Option(type, type))
window.addEventListener('message', (event) => void onMessage(event))
window.addEventListener('beforeunload', (event) => {
  if (dirty) event.preventDefault()
})
for (const select of [cidSelect, roleSelect, themeSelect]) select.addEventListener('change', onSessionChange)
$<HTMLButtonElement>('reload').addEventListener('click', onSessionChange)
simForm.addEventListener('submit', (event) => void simulate(event))
void showInfo()
loadPanel()
