/**
 * Connect with Kit in a real browser: from the panel inside the local App Station, Kit's consent
 * page opens in a popup (the stand-in's Kit app approves at once), the callback tells the panel
 * and closes, and the panel shows the OAuth connection. No token ever reaches the browser: not in
 * a URL it visits, a page it loads, a message it receives or its storage.
 */
import type { BrowserContext, FrameLocator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chromiumAvailable, startStack, type Stack } from './harness.ts'

const CLIENT = { clientId: 'kit_app_browser', clientSecret: 'kit_app_browser_secret_0123456789' }

describe.skipIf(!chromiumAvailable && !process.env.CI)('Connect with Kit from the panel inside the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
  let panel: FrameLocator
  /** Every URL and body the browser saw, and every message a window received. */
  let seen: string[]
  let problems: string[]

  beforeAll(async () => {
    stack = await startStack({
      kit: { oauth: { ...CLIENT, account: 'kit_test_key' } },
      env: (origin) => ({ PUBLIC_URL: origin, KIT_OAUTH_CLIENT_ID: CLIENT.clientId, KIT_OAUTH_CLIENT_SECRET: CLIENT.clientSecret }),
    })
    stack.kit.oauth!.registerRedirectUri(`${stack.origin}/oauth/kit/callback`)
  })
  afterAll(async () => {
    await stack?.stop()
  })

  beforeEach(async () => {
    seen = []
    problems = []
    context = await stack.browser.newContext({ viewport: { width: 1200, height: 900 } })
    await context.exposeBinding('recordMessage', (_source, data: string) => {
      seen.push(data)
    })
    await context.addInitScript(() => {
      window.addEventListener('message', (event) => {
        const record = (window as unknown as { recordMessage: (data: string) => void }).recordMessage
        record(`${event.origin} ${JSON.stringify(event.data)}`)
      })
    })
    context.on('request', (request) => {
      seen.push(request.url())
    })
    context.on('response', async (response) => {
      const type = response.headers()['content-type'] ?? ''
      if (/html|json|javascript/.test(type) && response.status() < 300) seen.push(await response.text().catch(() => ''))
    })
    page = await context.newPage()
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
    panel = page.frameLocator('#panel')
  })
  afterEach(async () => {
    try {
      expect(problems).toEqual([])
    } finally {
      await context.close()
    }
  })

  it('connects through Kit’s consent page in a popup; the panel shows the OAuth connection and no token reaches the browser', async () => {
    await page.goto(`${stack.origin}/dev/`)
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
    // Both ways, Connect with Kit first; the API key field as ever.
    await panel.getByText('Use an API key instead').waitFor()
    await panel.getByLabel('Kit API key', { exact: true }).waitFor()

    const popupOpened = context.waitForEvent('page')
    await panel.getByRole('button', { name: 'Connect with Kit', exact: true }).click()
    const popup = await popupOpened
    popup.on('pageerror', (error) => problems.push(`popup: ${error.message}`))
    await popup.waitForEvent('close', { timeout: 20_000 })

    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
    await panel.locator('.facts').getByText('Connect with Kit').waitFor()
    await page
      .locator('#toasts')
      .getByText(/Connected to Kit/)
      .waitFor()

    const grant = stack.kit.oauth!.grants[0]!
    expect(grant.tenantName).toContain('c_demo')
    expect(seen.some((entry) => entry.includes('/v4/oauth/authorize?'))).toBe(true)
    expect(seen.some((entry) => entry.includes('"type":"kit-oauth","ok":true'))).toBe(true)
    const storage = await panel.locator('body').evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }))
    const everything = [...seen, storage].join('\n')
    for (const token of [grant.accessToken, grant.refreshToken, CLIENT.clientSecret]) expect(everything).not.toContain(token)

    // The connection works: Kit's lists come through the bearer token.
    await panel.getByRole('button', { name: 'Test connection' }).click()
    await panel.getByText('Connection works', { exact: true }).waitFor()
    expect(stack.kit.requests.some((r) => r.grant === grant.id && r.path === '/v4/account')).toBe(true)

    // Disconnect revokes the grant at Kit.
    await panel.getByRole('button', { name: 'Disconnect' }).click()
    await panel.getByRole('button', { name: 'Yes, disconnect' }).click()
    await panel.getByRole('button', { name: 'Connect with Kit', exact: true }).waitFor()
    expect(grant.revoked).toBe(true)
  })

  it('says "Connection cancelled" when the popup is closed at Kit', async () => {
    await page.goto(`${stack.origin}/dev/`)
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
    // Kit's page waits for the owner: the popup is closed before anything comes back.
    await context.route(/\/v4\/oauth\/authorize/, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<p>Kit</p>' }))
    const popupOpened = context.waitForEvent('page')
    await panel.getByRole('button', { name: 'Connect with Kit', exact: true }).click()
    const popup = await popupOpened
    await popup.waitForURL(/\/v4\/oauth\/authorize/)
    await popup.close()
    await panel.getByRole('alert').getByText('Connection cancelled.').waitFor()
  })
})
