/**
 * The Rules section in a real browser: the first screen is the key field, and an owner builds a
 * rule with the keyboard alone, previews it against the events the community sent, saves it, finds
 * the save in History and restores the version before it; the settings API holds each step. Set
 * SCREENSHOTS=1 to also save docs/mapping-editor.png (the Rules section with that rule open),
 * docs/rules.png (the rule with the preview's answer) and docs/history.png (the history list).
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Frame, FrameLocator, Locator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Mappings } from '#shared/api.ts'
import { chromiumAvailable, eventually, startStack, type Stack } from './harness.ts'

const KEY = 'kit_test_key'
/** Who the local App Station signs the owner's session for (its `sub`): History names them. */
const OWNER = 'u_dev_owner'
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

  /** The mappings as the settings API returns them, for the community the page shows, as its owner. */
  async function savedMappings(cid = 'c_demo'): Promise<Mappings> {
    const minted = await fetch(`${stack.origin}/dev/api/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid, roles: ['owner'], sub: OWNER }),
    })
    const { token } = (await minted.json()) as { token: string }
    const answer = await fetch(`${stack.origin}/api/v1/mappings`, { headers: { authorization: `Bearer ${token}` } })
    expect(answer.status).toBe(200)
    return (await answer.json()) as Mappings
  }

  /** A subscription start sent to the plugin as App Station sends it (signed), through the local App Station. */
  async function subscriptionStarts(memberId: string, plan: string, cid = 'c_demo'): Promise<void> {
    const answer = await fetch(`${stack.origin}/dev/api/simulate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        cid,
        type: 'subscription.started',
        member: { id: memberId, email: `${memberId}@example.com` },
        subscription: { id: `sub_${memberId}`, plan, status: 'active' },
      }),
    })
    expect(answer.status).toBe(200)
    expect(((await answer.json()) as { status: number }).status).toBe(202)
  }

  /**
   * A screenshot for the docs: the panel from the top of `first` (its section tabs unless said) to
   * the bottom of `last`, `margin` px beyond each, in a viewport tall enough to show all of it, so
   * the floating save bar sits at the end of the form, where it stands once the owner has scrolled there.
   */
  async function screenshot(
    file: string,
    last: Locator,
    { first = panel.getByRole('tablist'), margin = [12, 12] }: { first?: Locator; margin?: [top: number, bottom: number] } = {},
  ): Promise<void> {
    mkdirSync(DOCS, { recursive: true })
    const viewport = page.viewportSize()!
    await panelFrame().evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
    await page.setViewportSize({ width: viewport.width, height: 3000 })
    await page.evaluate(() => window.scrollTo(0, 0))
    const form = panel.locator('form').filter({ has: panel.locator('.savebar') })
    await eventually(async () => {
      const [bar, end] = [(await form.locator('.savebar').boundingBox())!, (await form.boundingBox())!]
      expect(end.y + end.height - (bar.y + bar.height)).toBeLessThan(24)
    })
    const frame = (await page.locator('#panel').boundingBox())!
    const top = (await first.boundingBox())!
    const bottom = (await last.boundingBox())!
    await page.screenshot({
      path: `${DOCS}${file}`,
      fullPage: true,
      clip: { x: frame.x, y: top.y - margin[0], width: frame.width, height: bottom.y + bottom.height + margin[1] - (top.y - margin[0]) },
    })
    await page.setViewportSize(viewport)
  }

  it('builds "if plan is pro-annual → add Annual" with the keyboard alone, previews it, saves it and restores the version before it', async () => {
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

    // The community's recent events, which the preview counts: two yearly plans and one monthly.
    await subscriptionStarts('m_annual_ada', 'pro-annual')
    await subscriptionStarts('m_monthly_bo', 'pro-monthly')
    await subscriptionStarts('m_annual_cy', 'pro-annual')

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

    // The preview, before saving: the server plans the three events sent above with the saved mappings
    // and with the draft, and two of them start the yearly plan. The draft is previewed once it has
    // rested; Preview, from the keyboard, asks the server again at once.
    const preview = panel.locator('.preview-result')
    const answer = 'Of the last 3 subscription starts, 2 match rule 1 (plan is pro-annual); 2 members would now get the tag Annual.'
    await preview.getByRole('listitem').filter({ hasText: answer }).waitFor()
    await moveTo('Preview')
    const asked = page.waitForRequest((request) => request.method() === 'POST' && request.url().endsWith('/api/v1/mappings/preview'))
    await page.keyboard.press('Enter')
    const answered = await (await asked).response()
    expect(answered?.status()).toBe(200)
    await eventually(async () => expect(await preview.getAttribute('aria-busy')).toBe('false'))
    expect(await preview.getByRole('listitem').allTextContents()).toEqual([answer])
    expect(await panel.getByText('Unsaved changes', { exact: true }).count()).toBe(1)
    if (process.env.SCREENSHOTS === '1') await screenshot('rules.png', panel.locator('.mapping-preview'), { margin: [12, 2] })

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

    if (process.env.SCREENSHOTS === '1')
      await screenshot('mapping-editor.png', panel.getByRole('article', { name: '(subscription.started)' }))

    // History: the save, newest first and in force, with the change in words and who saved it; below
    // it version 0, what was in place before the first save.
    const history = panel.getByRole('region', { name: 'History' })
    const versions = history.getByRole('listitem').filter({ hasText: /^\s*Version \d+/ })
    /** One version in the list as a person reads it, line by line. */
    const versionLines = async (index: number) =>
      (await versions.nth(index).innerText())
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean)
    const added = 'added a rule to Subscription starts: when plan is pro-annual, add tag "Annual"'
    await versions.filter({ hasText: 'Version 1' }).waitFor()
    expect(await versions.count()).toBe(2)
    expect(await versionLines(0)).toEqual([expect.stringMatching(new RegExp(`^Version 1 · .+ · by ${OWNER} · in force$`)), added])
    expect(await versionLines(1)).toEqual([
      expect.stringMatching(/^Version 0 · [^·]+$/),
      'the mappings in place before the first save',
      'Restore',
    ])

    // Restore version 0 from the keyboard: the confirmation says what it would change (the rule goes)
    // and takes the keyboard to Cancel; Shift+Tab reaches the restore itself.
    await moveTo('Restore version 0')
    await page.keyboard.press('Enter')
    const confirm = history.getByRole('group', { name: 'Confirm restoring version 0' })
    await confirm.waitFor()
    expect(await focusedName()).toBe('Cancel')
    const removed = 'removed a rule from Subscription starts: when plan is pro-annual, add tag "Annual"'
    await confirm.getByRole('listitem').filter({ hasText: removed }).waitFor()
    expect(await confirm.getByRole('listitem').allTextContents()).toEqual([removed])
    await page.keyboard.press('Shift+Tab')
    expect(await focusedName()).toBe('Restore version 0')
    await page.keyboard.press('Enter')
    await history.getByText('Version 0 restored as version 2.', { exact: true }).waitFor()
    expect(await confirm.count()).toBe(0)

    // The rule is gone from the settings API and from the event's line; the restore is a new version.
    const restored = await savedMappings()
    expect(restored.events['subscription.started']!.rules ?? []).toEqual([])
    expect(restored.events['subscription.started']!.add_tags.map((t) => t.name)).toEqual(['Active Member'])
    await panel.getByRole('button', { name: 'Subscription starts → add Active Member, remove Cancelled', exact: true }).waitFor()
    expect(await panel.getByText('All changes saved').count()).toBe(1)
    expect(await versions.count()).toBe(3)
    expect(await versionLines(0)).toEqual([
      expect.stringMatching(new RegExp(`^Version 2 · .+ · by ${OWNER} · in force$`)),
      `${removed} (restored version 0)`,
    ])
    expect(await versionLines(1)).toEqual([expect.stringMatching(new RegExp(`^Version 1 · .+ · by ${OWNER}$`)), added, 'Restore'])
    expect(await history.getByRole('button', { name: 'Restore version 1' }).count()).toBe(1)
    expect(await history.getByRole('button', { name: 'Restore version 2' }).count()).toBe(0)
    if (process.env.SCREENSHOTS === '1') await screenshot('history.png', history, { first: history, margin: [4, 12] })
  })
})
