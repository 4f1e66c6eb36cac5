/** Mounts the panel the way App Station shows it, with a session token already in place. */
import { flushPromises, mount, type DOMWrapper, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { vi } from 'vitest'
import { api } from '../../ui/src/api/index.ts'
import App from '../../ui/src/App.vue'
import { useSessionStore } from '../../ui/src/stores/session.ts'
import { aConnection, aToken, someMappings } from './factories.ts'
import { answerPlatformEvents } from './platform-events-answers.ts'

/** Default answers of the faked API module (`vi.mock('../../ui/src/api/index.ts')` in the test file). */
export function answerWithDefaults(): void {
  vi.mocked(api.getConnection).mockResolvedValue(aConnection())
  vi.mocked(api.getMappings).mockResolvedValue(someMappings())
  vi.mocked(api.saveMappings).mockImplementation(async (doc) => doc)
  vi.mocked(api.getConsent).mockResolvedValue({ mode: 'all_members', updated_at: null })
  vi.mocked(api.setConsent).mockImplementation(async (mode) => ({ mode, updated_at: '2026-12-07T10:00:00.000Z' }))
  vi.mocked(api.listTags).mockResolvedValue([
    { id: 1, name: 'New Member' },
    { id: 3, name: 'VIP' },
  ])
  vi.mocked(api.listCustomFields).mockResolvedValue([{ id: 11, key: 'subscription_plan', label: 'Subscription plan' }])
  vi.mocked(api.listForms).mockResolvedValue([
    { id: 21, name: 'Newsletter sign-up', type: 'embed', archived: false },
    { id: 22, name: 'Old form', type: 'embed', archived: true },
  ])
  vi.mocked(api.listSequences).mockResolvedValue([{ id: 31, name: 'Welcome series' }])
  vi.mocked(api.listDeliveries).mockResolvedValue({ items: [], next_cursor: null })
  vi.mocked(api.listSyncs).mockResolvedValue({ items: [] })
  vi.mocked(api.countReplayable).mockResolvedValue({ count: 0, members: 0, event_types: [] })
  answerPlatformEvents({ configured: false })
  vi.mocked(api.listErasures).mockResolvedValue({ items: [] })
}

export async function mountPanel(): Promise<VueWrapper> {
  const pinia = createPinia()
  setActivePinia(pinia)
  useSessionStore().setToken(aToken(), { cid: 'c_demo', locale: 'en', theme: 'light' })
  const wrapper = mount(App, { global: { plugins: [pinia] }, attachTo: document.body })
  await flushPromises()
  return wrapper
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim()

/** Anything a test can search in: the mounted panel or a part of it. */
export interface Root {
  text(): string
  find(selector: string): DOMWrapper<Element>
  findAll(selector: string): DOMWrapper<Element>[]
}

/** The form control whose label reads exactly `text` (its accessible name). */
export function byLabel(root: Root, text: string): DOMWrapper<HTMLInputElement> {
  const label = root.findAll('label').find((l) => squash(l.text()) === text)
  if (!label) throw new Error(`No label "${text}"`)
  const id = label.attributes('for')
  const control = id ? root.find(`[id="${id}"]`) : label.find('input, select')
  if (!control.exists()) throw new Error(`Label "${text}" labels nothing`)
  return control as DOMWrapper<HTMLInputElement>
}

/** The button whose visible text (or aria-label) reads `text`. */
export function button(root: Root, text: string): DOMWrapper<HTMLButtonElement> {
  const found = root.findAll('button').find((b) => squash(b.text()) === text || b.attributes('aria-label') === text)
  if (!found) throw new Error(`No button "${text}"`)
  return found as DOMWrapper<HTMLButtonElement>
}

export function hasButton(root: Root, text: string): boolean {
  return root.findAll('button').some((b) => squash(b.text()) === text || b.attributes('aria-label') === text)
}

export const textOf = (root: Root) => squash(root.text())
