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
  await settled(wrapper)
  return wrapper
}

/** Waits until no part of the panel is still fetching its chunk ("Loading …" in a section's place), without moving faked clocks. */
export async function settled(wrapper: VueWrapper): Promise<void> {
  const loading = () => wrapper.find('[role="tabpanel"] > .state-loading, .lazy-loading').exists()
  for (let round = 0; round < 20 && loading(); round++) {
    await vi.dynamicImportSettled()
    await flushPromises()
  }
  if (loading()) throw new Error('a section is still loading')
}

/** The tab of a section, by its label ("Rules", "Kit → App Station"). */
export function tab(root: Root, label: string): DOMWrapper<HTMLButtonElement> {
  const found = root.findAll('[role="tab"]').find((t) => squash(t.text()).startsWith(label))
  if (!found) throw new Error(`No tab "${label}"`)
  return found as DOMWrapper<HTMLButtonElement>
}

/** Shows a section of the panel, as a click on its tab does, once its chunk has come. */
export async function showSection(wrapper: VueWrapper, label: string): Promise<void> {
  await tab(wrapper, label).trigger('click')
  await flushPromises()
  await settled(wrapper)
}

/** Opens events in the Rules section (every event when none is named), "Not used" included. */
export async function openEvents(wrapper: VueWrapper, ...types: string[]): Promise<void> {
  const notUsed = wrapper.findAll('.not-used > h3 > button').find((b) => b.attributes('aria-expanded') === 'false')
  if (notUsed) await notUsed.trigger('click')
  for (const article of wrapper.findAll('article.event')) {
    const type = /\(([^)]+)\)$/.exec(article.attributes('aria-label') ?? '')?.[1] ?? ''
    const toggle = article.get('h3 > button')
    if ((types.length === 0 || types.includes(type)) && toggle.attributes('aria-expanded') === 'false') await toggle.trigger('click')
  }
  await flushPromises()
}

/** The panel on its Rules section with events open (every event when none is named). */
export async function mountEditor(...types: string[]): Promise<VueWrapper> {
  const wrapper = await mountPanel()
  await showSection(wrapper, 'Rules')
  await openEvents(wrapper, ...types)
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

/** The panel on one of its sections ("Activity", "Kit → App Station"). */
export async function mountSection(label: string): Promise<VueWrapper> {
  const wrapper = await mountPanel()
  await showSection(wrapper, label)
  return wrapper
}
