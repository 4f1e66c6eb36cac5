/**
 * Activity, Kit-down states, keyboard flows and layout in a real browser. Set SCREENSHOTS=1 to
 * also save docs/activity.png.
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, ConsoleMessage, Frame, FrameLocator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chromiumAvailable, eventually, startStack, type Stack } from './harness.ts'

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))

const squash = (value: string | null) => value?.replace(/\s+/g, ' ').trim() ?? ''

describe.skipIf(!chromiumAvailable && !process.env.CI)('activity and connection states in the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
  let panel: FrameLocator
  /** Console errors and uncaught exceptions of the page and its frames. */
  let problems: string[]
  /** Failed API answers a test expects (e.g. 502 while Kit is down): not counted as console errors. */
  let expectedStatuses: number[]

  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.stop()
  })

  beforeEach(async () => {
    problems = []
    expectedStatuses = []
    context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } })
    page = await context.newPage()
    const failedApiAnswers: string[] = []
    page.on('response', (response) => {
      if (response.status() >= 400 && new URL(response.url()).pathname.startsWith('/api/v1/'))
        failedApiAnswers.push(String(response.status()))
    })
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() !== 'error') return
      const failedLoad = /^Failed to load resource: the server responded with a status of (\d+)/.exec(message.text())
      if (failedLoad && expectedStatuses.includes(Number(failedLoad[1])) && failedApiAnswers.includes(failedLoad[1]!)) return
      problems.push(`${message.location().url}: ${message.text()}`)
    })
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
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
    if (!frame) throw new Error('the panel frame is not there')
    return frame
  }

  async function openDev(cid = 'c_demo'): Promise<void> {
    await page.goto(`${stack.origin}/dev/`)
    if (cid !== 'c_demo') {
      await page.locator('#cid').evaluate((select: HTMLSelectElement, value) => {
        if (![...select.options].some((o) => o.value === value)) select.add(new Option(value, value))
      }, cid)
      await page.locator('#cid').selectOption(cid)
    }
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
  }

  async function connectInPanel(): Promise<void> {
    await panel.locator('.status-line, input[name="kit-api-key"]').first().waitFor()
    if (await panel.locator('.status-line').count()) return
    await panel.getByLabel('Kit API key', { exact: true }).fill('kit_test_key')
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
  }

  /** Shows a section of the panel with a click on its tab. */
  async function showSection(name: string): Promise<void> {
    await panel.getByRole('tab', { name: new RegExp(`^${name}`) }).click()
  }

  /** Opens one event in the Rules section, looking under "Not used" too. */
  async function openEvent(title: string): Promise<void> {
    await showSection('Rules')
    const toggle = panel.getByRole('button', { name: new RegExp(`^${title} → `) })
    const notUsed = panel.getByRole('button', { name: /^Not used \(\d+\)$/ })
    await toggle.or(notUsed).first().waitFor()
    if ((await toggle.count()) === 0) await notUsed.click()
    if ((await toggle.getAttribute('aria-expanded')) === 'false') await toggle.click()
  }

  /** Connects a community through the API, as another tab would, without opening the panel. */
  async function connectByApi(cid: string): Promise<void> {
    const minted = await fetch(`${stack.origin}/dev/api/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid, roles: ['owner'] }),
    })
    const { token } = (await minted.json()) as { token: string }
    const res = await fetch(`${stack.origin}/api/v1/connection`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ api_key: 'kit_test_key' }),
    })
    expect(res.status).toBe(200)
  }

  async function simulate(email: string, memberId: string): Promise<void> {
    await page.locator('#sim-type').selectOption('user.signed_up')
    await page.locator('#simulate [name="email"]').fill(email)
    await page.locator('#simulate [name="member_id"]').fill(memberId)
    await page.getByRole('button', { name: 'Send event' }).click()
    await page.locator('#sim-status').getByText('/events answered 202.').waitFor()
  }

  it('shows a simulated event in Activity within 2 s without a click, with what it did in Kit', async () => {
    await openDev()
    await connectInPanel()
    await showSection('Activity')
    await panel.getByRole('heading', { name: 'Activity' }).waitFor()

    await simulate('grace.hopper@example.com', 'm_grace')
    const delivery = panel.locator('li.delivery', { hasText: 'grace.hopper@example.com' })
    await delivery.waitFor({ timeout: 2000 })
    await eventually(async () => expect(squash(await delivery.textContent())).toContain('Delivered'), 5000, 200)
    const shown = squash(await delivery.textContent())
    expect(shown).toContain('Subscriber created: grace.hopper@example.com')
    expect(shown).toContain('Tag added: New Member')
    expect(shown).toMatch(/\d{1,2}:\d{2}:\d{2}/)
    expect(shown).toMatch(/\((just now|\d+ s ago)\)/)

    if (process.env.SCREENSHOTS === '1') {
      mkdirSync(DOCS, { recursive: true })
      await panel.locator('section', { has: panel.getByRole('heading', { name: 'Activity' }) }).screenshot({ path: `${DOCS}activity.png` })
    }
  })

  it('searches one member and shows their deliveries oldest first', async () => {
    await openDev()
    await connectInPanel()
    await simulate('ada.story@example.com', 'm_story')
    await page.locator('#sim-type').selectOption('user.updated')
    await page.getByRole('button', { name: 'Send event' }).click()
    await page.locator('#sim-status').getByText('/events answered 202.').waitFor()

    await showSection('Activity')
    await panel.getByLabel('Member email').fill('ada.story@example.com')
    await panel.getByRole('button', { name: 'Apply filters' }).click()
    await panel.getByText('What happened to members matching ada.story@example.com, oldest first:').waitFor()
    await eventually(async () => {
      const types = await panel.locator('li.delivery code').allTextContents()
      expect(types).toEqual(['user.signed_up', 'user.updated'])
    }, 5000)
  })

  it('keeps the keyboard in place: Use another key, Escape on Disconnect, Disconnect and Connect', async () => {
    await openDev()
    await connectInPanel()
    const focusedText = () => panelFrame().evaluate(() => document.activeElement?.textContent?.trim() ?? document.activeElement?.tagName)
    const focusedLabel = () =>
      panelFrame().evaluate(() => (document.activeElement as HTMLInputElement | null)?.labels?.[0]?.textContent?.trim())

    await panel.getByRole('button', { name: 'Use another key' }).press('Enter')
    expect(await focusedLabel()).toBe('Kit API key')
    await panel.getByRole('button', { name: 'Keep the current key' }).click()

    await panel.getByRole('button', { name: 'Disconnect', exact: true }).press('Enter')
    await panel.getByText('Disconnect Kit?').waitFor()
    expect(await focusedText()).toBe('Cancel')
    await page.keyboard.press('Escape')
    await panel.getByText('Disconnect Kit?').waitFor({ state: 'detached' })
    expect(await focusedText()).toBe('Disconnect')

    await page.keyboard.press('Enter')
    await page.keyboard.press('Shift+Tab')
    expect(await focusedText()).toBe('Yes, disconnect')
    await page.keyboard.press('Enter')
    await panel.getByLabel('Kit API key', { exact: true }).waitFor()
    await eventually(async () => expect(await focusedLabel()).toBe('Kit API key'), 2000, 100)

    await page.keyboard.type('kit_test_key')
    await page.keyboard.press('Enter')
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
    await eventually(async () => expect(await focusedText()).toBe('Connected to Kit'), 2000, 100)
  })

  for (const width of [1280, 360]) {
    it(`wraps long unbroken names at ${width} px without sideways scrolling`, async () => {
      await page.setViewportSize({ width: Math.max(width + 400, 800), height: 900 })
      await openDev()
      await connectInPanel()
      const long = `Member-${width}-${'x'.repeat(120)}`
      await openEvent('Member updates their profile')
      const addTags = panel.getByRole('combobox', { name: 'Add tags for user.updated', exact: true })
      await addTags.fill(long)
      await panel.getByRole('option', { name: `Create tag “${long}” in Kit` }).click()
      await panel.getByRole('list', { name: 'Add tags for user.updated' }).getByText(long).waitFor()
      await panel.getByRole('button', { name: 'Save mappings' }).click()
      await panel.getByText('All changes saved').waitFor()
      await showSection('Connection')
      await panel.getByRole('button', { name: 'Test connection' }).click()
      await panel.getByText('Connection works', { exact: true }).waitFor()
      // One address per width: both runs share the community, and only this run's delivery may match.
      const longEmail = `w${width}${'y'.repeat(90)}@example.com`
      await simulate(longEmail, `m_long_${width}`)

      await page.locator('#panel').evaluate((iframe: HTMLIFrameElement, w) => (iframe.style.width = `${w}px`), width)
      /** Measured in each section: only the one shown is in the page. */
      const measure = () =>
        eventually(async () => {
          const measured = await panelFrame().evaluate(() => ({
            client: document.documentElement.clientWidth,
            scroll: document.documentElement.scrollWidth,
            wider: [...document.querySelectorAll<HTMLElement>('.chip, .check, li.delivery, .facts dd, [role="tab"]')]
              .filter((el) => el.scrollWidth > el.clientWidth + 1)
              .map((el) => el.className),
          }))
          expect(measured.client).toBeLessThanOrEqual(width)
          return measured
        })
      for (const section of ['Connection', 'Rules', 'Activity']) {
        await showSection(section)
        if (section === 'Rules') await openEvent('Member updates their profile')
        if (section === 'Activity') await panel.locator('li.delivery', { hasText: longEmail }).waitFor({ timeout: 5000 })
        const sizes = await measure()
        expect(sizes.scroll, section).toBeLessThanOrEqual(sizes.client)
        expect(sizes.wider, section).toEqual([])
      }
    })
  }

  it('says “Kit is busy, try again in N s” when Test connection is rate limited, using Retry-After', async () => {
    await openDev('c_busy')
    await connectInPanel()
    const test = panel.getByRole('button', { name: 'Test connection' })
    expectedStatuses = [429]
    await eventually(
      async () => {
        await test.click()
        await panel
          .getByText(/Connection works|Kit is busy/)
          .first()
          .waitFor()
        expect(await panel.getByText(/Kit is busy, try again in \d+ s\./).count()).toBe(1)
      },
      30_000,
      50,
    )
    expect(await panel.getByText('The connection does not work.').count()).toBe(0)
    expect(await test.isDisabled()).toBe(true)
    const seconds = Number(/(\d+) s/.exec(squash(await panel.locator('.result-warn').textContent()))![1])
    expect(seconds).toBeGreaterThan(0)
    expect(seconds).toBeLessThanOrEqual(60)
  })

  // Last: the stand-in keeps answering 503 for a while afterwards.
  it('says once that Kit can’t be reached when the stand-in answers 503, with tag creation disabled', async () => {
    await connectByApi('c_down')
    stack.kit.injectNext(400, { status: 503, body: '<html><body>Service Unavailable</body></html>', contentType: 'text/html' })
    expectedStatuses = [502]
    await openDev('c_down')
    const header = panel.locator('.status-line')
    await eventually(async () => expect(squash(await header.textContent())).toBe('Kit can’t be reached right now'), 20_000)
    expect(await panel.getByText('Connected to Kit', { exact: true }).count()).toBe(0)
    expect(await panel.locator('.kit-trouble').count()).toBe(1)
    expect(await panel.getByText(/could not be loaded/).count()).toBe(0)

    await openEvent('Member signs up')
    expect(await panel.getByText(/could not be loaded/).count()).toBe(0)
    const addTags = panel.getByRole('combobox', { name: 'Add tags for user.signed_up', exact: true })
    await addTags.fill('Founders')
    await panel
      .getByRole('option', { name: 'Can’t create tag “Founders” now: New tags can’t be created while Kit can’t be reached.' })
      .waitFor()

    await showSection('Connection')
    await panel.getByRole('button', { name: 'Test connection' }).click()
    await panel
      .getByText('Kit can’t be reached right now. The saved key was not rejected; try again in a few minutes.')
      .waitFor({ timeout: 20_000 })
    expect(await panel.getByText('The connection does not work.').count()).toBe(0)
  })
})
