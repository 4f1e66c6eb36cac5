/**
 * The Rules section in a real browser: the first screen is the key field, and an owner builds a
 * rule with the keyboard alone, saves it, and the settings API holds it. Set SCREENSHOTS=1 to also
 * save docs/mapping-editor.png (the Rules section with that rule open).
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Frame, FrameLocator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Mappings } from '#shared/api.ts'
import { chromiumAvailable, startStack, type Stack } from './harness.ts'

const KEY = 'kit_test_key'
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))

// Skipped on a developer machine without Chromium; in CI (which installs it) a missing browser fails.
describe.skipIf(!chromiumAvailable && !process.env.CI)('the Rules section inside the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
  let panel: FrameLocator
  let problems: string[]

  beforeAll(async () => {
    stack = await startStack()
    stack.kit.seed(KEY, { tags: ['New Member', 'Active Member', 'Cancelled'] })
  })
  afterAll(async () => {
    await stack?.stop()
  })

  beforeEach(async () => {
    problems = []
    context = await stack.browser.newContext({ viewport: { width: 1200, height: 900 } })
    page = await context.newPage()
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) problems.push(message.text())
    })
    panel = page.frameLocator('#panel')
  })
  afterEach(async () => {
    try {
      expect(problems, 'console errors').toEqual([])
    } finally {
      await context.close()
    }
  })

  const panelFrame = (): Frame => {
    const frame = page.frames().find((f) => new URL(f.url()).pathname === '/panel/')
    if (!frame) throw new Error('The panel frame is not there')
    return frame
  }

  /** The accessible name of what has the keyboard focus in the panel: its label, aria-label or text. */
  const focusedName = () =>
    panelFrame().evaluate(() => {
      const el = document.activeElement as HTMLElement | null
      if (!el || el === document.body) return ''
      const labelled = el.id ? document.querySelector(`label[for="${el.id}"]`)?.textContent : null
      return (labelled ?? el.getAttribute('aria-label') ?? el.textContent ?? '').replace(/\s+/g, ' ').trim()
    })

  async function moveTo(name: string | RegExp, key: 'Tab' | 'Shift+Tab' = 'Tab', limit = 120): Promise<void> {
    for (let i = 0; i < limit; i++) {
      const current = await focusedName()
      if (typeof name === 'string' ? current === name : name.test(current)) return
      await page.keyboard.press(key)
    }
    throw new Error(`${key} never reached ${String(name)} (last: ${await focusedName()})`)
  }

  /** The mappings as the settings API returns them, for the community the page shows. */
  async function savedMappings(cid = 'c_demo'): Promise<Mappings> {
    const minted = await fetch(`${stack.origin}/dev/api/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid, roles: ['owner'] }),
    })
    const { token } = (await minted.json()) as { token: string }
    const answer = await fetch(`${stack.origin}/api/v1/mappings`, { headers: { authorization: `Bearer ${token}` } })
    expect(answer.status).toBe(200)
    return (await answer.json()) as Mappings
  }

  it('builds "if plan is pro-annual → add Annual" on Subscription starts with the keyboard alone, and saves it', async () => {
    await page.goto(`${stack.origin}/dev/`)

    // The first screen: the Connection section, with the key field ready.
    const keyInput = panel.getByLabel('Kit API key', { exact: true })
    await keyInput.waitFor()
    expect(await keyInput.isEnabled()).toBe(true)
    expect(await panel.getByRole('tab', { name: 'Connection' }).getAttribute('aria-selected')).toBe('true')

    await panelFrame().evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
    await page.locator('#panel').focus()
    await moveTo('Kit API key')
    await page.keyboard.type(KEY)
    await page.keyboard.press('Enter')
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()

    // Back to the section tabs, the arrow to Rules.
    await moveTo('Connection', 'Shift+Tab')
    await page.keyboard.press('ArrowRight')
    expect(await focusedName()).toBe('Rules')
    const line = panel.getByRole('button', { name: /^Subscription starts → / })
    await line.waitFor()
    expect(await line.getAttribute('aria-expanded')).toBe('false')

    await moveTo(/^Subscription starts → /)
    await page.keyboard.press('Enter')
    expect(await line.getAttribute('aria-expanded')).toBe('true')
    await moveTo('Add rule for subscription.started')
    await page.keyboard.press('Enter')

    // The new rule's first condition already tests the plan with "is": the keyboard is on its field.
    const condition = 'of condition 1 in rule 1 for subscription.started'
    expect(await focusedName()).toBe(`Field ${condition}`)
    expect(await panel.getByLabel(`Field ${condition}`, { exact: true }).inputValue()).toBe('subscription.plan')
    await page.keyboard.press('Tab')
    expect(await focusedName()).toBe(`Comparison ${condition}`)
    expect(await panel.getByLabel(`Comparison ${condition}`, { exact: true }).inputValue()).toBe('is')
    await page.keyboard.press('Tab')
    expect(await focusedName()).toBe(`Value ${condition}`)
    await page.keyboard.type('pro-annual')
    await page.keyboard.press('Enter')
    expect(await panel.getByText('Unsaved changes', { exact: true }).count()).toBe(1)

    await moveTo('Add tags for subscription.started rule 1')
    await page.keyboard.type('Annual')
    await panel.getByRole('option', { name: 'Create tag “Annual” in Kit on first use' }).waitFor()
    await page.keyboard.press('Enter')
    await panel.getByRole('list', { name: 'Add tags for subscription.started rule 1' }).getByText('Annual', { exact: true }).waitFor()
    await panel
      .getByRole('button', { name: 'Subscription starts → add Active Member, remove Cancelled; if plan is pro-annual → add Annual' })
      .waitFor()

    await page.keyboard.press('Control+s')
    await panel.getByText('All changes saved').waitFor()

    const saved = await savedMappings()
    expect(saved.events['subscription.started']!.rules).toEqual([
      {
        conditions: [{ field: 'subscription.plan', op: 'is', value: 'pro-annual' }],
        add_tags: [{ name: 'Annual' }],
        remove_tags: [],
        add_to_forms: [],
        add_to_sequences: [],
        unsubscribe: false,
      },
    ])
    expect(saved.events['subscription.started']!.add_tags.map((t) => t.name)).toEqual(['Active Member'])

    if (process.env.SCREENSHOTS === '1') {
      mkdirSync(DOCS, { recursive: true })
      await panelFrame().evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
      await page.evaluate(() => window.scrollTo(0, 0))
      const frame = (await page.locator('#panel').boundingBox())!
      const top = (await panel.getByRole('tablist').boundingBox())!
      const event = (await panel.getByRole('article', { name: '(subscription.started)' }).boundingBox())!
      await page.screenshot({
        path: `${DOCS}mapping-editor.png`,
        fullPage: true,
        clip: { x: frame.x, y: top.y - 12, width: frame.width, height: event.y + event.height + 12 - (top.y - 12) },
      })
    }
  })
})
