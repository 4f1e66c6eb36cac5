/**
 * The loop tried offline in a real browser: the server tells the local App Station's receiver,
 * the dev page lists what arrived, and the panel's "Kit → App Station" section (loaded on demand)
 * counts it. A key Kit stops accepting is the event here: it needs nothing but the stand-in.
 */
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { newPlatformSecret } from '../helpers/platform-receiver.ts'
import { chromiumAvailable, eventually, startStack, type Stack } from './harness.ts'

const squash = (value: string | null) => value?.replace(/\s+/g, ' ').trim() ?? ''

describe.skipIf(!chromiumAvailable && !process.env.CI)('Kit → App Station in the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
  let problems: string[]

  beforeAll(async () => {
    stack = await startStack({
      env: (origin) => ({ PLATFORM_EVENTS_URL: `${origin}/dev/platform-events`, PLATFORM_EVENTS_SECRET: newPlatformSecret() }),
    })
  })
  afterAll(async () => {
    await stack?.stop()
  })
  beforeEach(async () => {
    problems = []
    context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } })
    page = await context.newPage()
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
  })
  afterEach(async () => {
    try {
      expect(problems, 'uncaught errors').toEqual([])
    } finally {
      await context.close()
    }
  })

  it('tells the dev receiver when Kit stops accepting the key, and the panel counts what was sent', async () => {
    await page.goto(`${stack.origin}/dev/`)
    const panel = page.frameLocator('#panel')
    await panel.getByLabel('Kit API key', { exact: true }).fill('kit_test_key')
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
    const tab = panel.getByRole('tab', { name: 'Kit → App Station' })
    await tab.click()
    const section = panel.getByRole('region', { name: 'Kit → App Station' })
    await section.getByText('App Station is told about changes in Kit.').waitFor()
    await section.getByText('Nothing to tell App Station in the last 30 days.', { exact: false }).waitFor()

    stack.kit.revokeKey('kit_test_key')
    await panel.getByRole('tab', { name: 'Connection' }).click()
    await panel.getByRole('button', { name: 'Test connection' }).click()
    const told = page.locator('#told li')
    await told.first().waitFor({ timeout: 15_000 })
    expect(await told.count()).toBe(1)
    expect(squash(await told.first().locator('strong').textContent())).toBe('kit.connection.invalid')
    expect(squash(await told.first().locator('.muted').textContent())).toContain('c_demo')

    // Opened again, the panel says at its top that the key no longer works.
    await page.locator('#reload').click()
    await panel.locator('header').getByText('Kit no longer accepts the saved API key', { exact: false }).waitFor()

    await tab.click()
    await eventually(async () => {
      await section.getByRole('button', { name: 'Check again' }).click()
      const row = section.locator('tbody tr').filter({ hasText: 'Kit stopped accepting the API key' })
      await row.waitFor({ timeout: 2000 })
      expect((await row.locator('th, td').allTextContents()).map(squash)).toEqual(['Kit stopped accepting the API key', '1', '0', '0'])
    })
  })
})
