import type { BrowserContext, FrameLocator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chromiumAvailable, eventually, startStack, type Stack } from './harness.ts'

/** Every URL the page and its frames asked for, and every token the host page was given. */
interface Traffic {
  urls: string[]
  tokens: string[]
  bearerCalls: number
  apiCallsWithoutBearer: string[]
  /** Content-Security-Policy violations, from the console and from `securitypolicyviolation` in any frame. */
  cspViolations: string[]
}

async function watchPolicy(context: BrowserContext, traffic: Traffic): Promise<void> {
  await context.exposeBinding('reportPolicyViolation', ({ frame }, detail: string) => {
    traffic.cspViolations.push(`${new URL(frame.url()).pathname}: ${detail}`)
  })
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const report = (window as unknown as { reportPolicyViolation: (detail: string) => void }).reportPolicyViolation
      report(`${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`)
    })
  })
}

function watch(page: Page): Traffic {
  const traffic: Traffic = { urls: [], tokens: [], bearerCalls: 0, apiCallsWithoutBearer: [], cspViolations: [] }
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) traffic.cspViolations.push(message.text())
  })
  page.on('request', (request) => {
    traffic.urls.push(request.url())
    if (new URL(request.url()).pathname.startsWith('/api/v1/')) {
      if (/^Bearer \S+$/.test(request.headers().authorization ?? '')) traffic.bearerCalls++
      else traffic.apiCallsWithoutBearer.push(request.url())
    }
  })
  page.on('response', async (response) => {
    if (!response.url().endsWith('/dev/api/token') || !response.ok()) return
    const body = (await response.json()) as { token: string }
    traffic.tokens.push(body.token)
  })
  return traffic
}

const text = async (locator: ReturnType<FrameLocator['locator']>) => (await locator.textContent())?.replace(/\s+/g, ' ').trim() ?? ''

// Skipped on a developer machine without Chromium; in CI (which installs it) a missing browser fails.
describe.skipIf(!chromiumAvailable && !process.env.CI)('the panel inside the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
  let traffic: Traffic
  let panel: FrameLocator

  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.stop()
  })

  beforeEach(async () => {
    context = await stack.browser.newContext({ viewport: { width: 1200, height: 900 } })
    page = await context.newPage()
    traffic = watch(page)
    await watchPolicy(context, traffic)
    panel = page.frameLocator('#panel')
  })
  afterEach(async () => {
    try {
      expect(traffic.cspViolations, 'Content-Security-Policy violations').toEqual([])
    } finally {
      await context.close()
    }
  })

  async function openDev(cid = 'c_demo'): Promise<void> {
    await page.goto(`${stack.origin}/dev/`)
    if (cid !== 'c_demo') await page.locator('#cid').selectOption(cid)
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
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

  it('connects with a bad then the good key, tests it, saves a mapping that survives a reload, and shows a simulated delivery', async () => {
    await openDev()

    const keyInput = panel.getByLabel('Kit API key', { exact: true })
    await keyInput.fill('kit_not_a_real_key')
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    const alert = panel.getByRole('alert')
    await alert.filter({ hasText: 'Not connected. Kit rejected this API key' }).waitFor()
    expect(await keyInput.getAttribute('aria-invalid')).toBe('true')

    await keyInput.fill('kit_test_key')
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
    await page
      .locator('#toasts')
      .getByText(/Connected to Kit/)
      .waitFor()
    expect(await text(panel.locator('.facts'))).toContain('…_key')

    await panel.getByRole('button', { name: 'Test connection' }).click()
    await panel.getByText('Connection works', { exact: true }).waitFor()
    expect(await panel.locator('.checks li').count()).toBeGreaterThan(0)

    await openEvent('Member updates their profile')
    const addTags = panel.getByRole('combobox', { name: 'Add tags for user.updated', exact: true })
    await addTags.fill('Profile updated')
    await panel.getByRole('option', { name: 'Create tag “Profile updated” in Kit' }).waitFor()
    await addTags.press('Enter')
    const userUpdated = panel.getByRole('article', { name: 'user.updated' })
    await userUpdated.getByRole('list', { name: 'Add tags for user.updated' }).getByText('Profile updated').waitFor()
    await page.locator('#dirty').waitFor({ state: 'visible' })

    await panel.getByRole('button', { name: 'Save mappings' }).click()
    await panel.getByText('All changes saved').waitFor()
    await page.locator('#dirty').waitFor({ state: 'hidden' })

    await page.reload()
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
    await openEvent('Member updates their profile')
    await panel
      .getByRole('article', { name: 'user.updated' })
      .getByRole('list', { name: 'Add tags for user.updated' })
      .getByText('Profile updated')
      .waitFor()
    expect(await page.locator('#dirty').isHidden()).toBe(true)

    await page.locator('#sim-type').selectOption('user.signed_up')
    await page.locator('#simulate [name="email"]').fill('grace@example.com')
    await page.locator('#simulate [name="member_id"]').fill('m_grace')
    await page.locator('#simulate [name="first_name"]').fill('Grace')
    await page.getByRole('button', { name: 'Send event' }).click()
    await page.locator('#sim-status').getByText('/events answered 202.').waitFor()

    await showSection('Activity')
    await eventually(async () => {
      await panel.getByRole('button', { name: 'Refresh' }).click()
      const delivery = panel.locator('li.delivery', { hasText: 'grace@example.com' })
      await delivery.waitFor({ timeout: 1000 })
      const shown = await text(delivery)
      expect(shown).toContain('Delivered')
      expect(shown).toContain('user.signed_up')
    }, 30_000)

    await panel.getByLabel('Member email').fill('nobody@example.com')
    await panel.getByRole('button', { name: 'Apply filters' }).click()
    await panel.getByText('No deliveries match these filters.').waitFor()

    expect(traffic.tokens.length).toBeGreaterThan(0)
    expect(traffic.bearerCalls).toBeGreaterThan(0)
    expect(traffic.apiCallsWithoutBearer).toEqual([])
    for (const url of traffic.urls) {
      for (const token of traffic.tokens) expect(url).not.toContain(token)
      expect(url).not.toMatch(/token=|eyJ[\w-]+\.eyJ/)
    }
  })

  it('shows a member that only owners and admins may manage Kit', async () => {
    await page.goto(`${stack.origin}/dev/`)
    await page.locator('#role').selectOption('member')
    await panel.getByText('You need to be an owner or admin of this community to manage the Kit integration.').waitFor()
  })

  it('follows the host’s dark theme', async () => {
    await page.goto(`${stack.origin}/dev/`)
    await page.locator('#theme').selectOption('dark')
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
    // Switching the theme reloads the frame, so the heading above may still be the old frame's.
    await eventually(async () => {
      const frame = page.frames().find((f) => new URL(f.url()).pathname === '/panel/')
      expect(await frame?.evaluate(() => document.documentElement.dataset.theme)).toBe('dark')
    })
  })

  it('keeps each community’s settings apart', async () => {
    await openDev('c_other')
    await panel.getByLabel('Kit API key', { exact: true }).waitFor()
    expect(await panel.getByText('Connected to Kit', { exact: true }).count()).toBe(0)
  })

  it('fits a 360 px wide screen without sideways scrolling', async () => {
    await openDev()
    await page.locator('#panel').evaluate((iframe: HTMLIFrameElement) => (iframe.style.width = '360px'))
    const frame = page.frames().find((f) => new URL(f.url()).pathname === '/panel/')
    const widths = await eventually(async () => {
      const measured = await frame!.evaluate(() => ({
        client: document.documentElement.clientWidth,
        scroll: document.documentElement.scrollWidth,
      }))
      expect(measured.client).toBeLessThanOrEqual(360)
      return measured
    })
    expect(widths.scroll).toBeLessThanOrEqual(widths.client)
  })

  it('asks to be opened from App Station when visited directly, and may be framed only by App Station', async () => {
    const response = await page.goto(`${stack.origin}/panel/`)
    const policy = response?.headers()['content-security-policy'] ?? ''
    expect(policy).toContain(`frame-ancestors ${stack.origin}`)
    expect(policy).toContain("script-src 'self'")
    expect(policy).toContain("object-src 'none'")
    await page.getByText('Open this panel from App Station › Settings › Integrations › Kit.').waitFor()
  })
})
