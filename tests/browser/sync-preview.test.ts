/**
 * The import preview in a real browser: on a narrow screen its headings break between words only,
 * and a preview made before Disconnect is gone once Kit is connected again.
 */
import type { BrowserContext, FrameLocator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chromiumAvailable, startStack, type Stack } from './harness.ts'

const KEY = 'kit_test_key'
const csv = [
  'email,member_id,first_name,access_level',
  'a.rather.long.address.for.a.narrow.screen@example.com,m_1,Ada,gold',
  'b@example.com,m_2,Bo,silver',
].join('\n')

describe.skipIf(!chromiumAvailable && !process.env.CI)('the import preview in the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
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
    panel = page.frameLocator('#panel')
  })
  afterEach(async () => {
    await context.close()
  })

  async function connect(): Promise<void> {
    await panel.getByLabel('Kit API key', { exact: true }).fill(KEY)
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
  }

  async function preview(): Promise<void> {
    await panel.getByRole('tab', { name: 'Import' }).click()
    const card = panel.locator('.sync-card')
    await card
      .getByLabel('Member file (CSV or JSON Lines)')
      .setInputFiles({ name: 'members.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) })
    await card.getByRole('button', { name: 'Preview' }).click()
    await card.getByRole('table', { name: 'Preview: what the sync would do in Kit' }).waitFor()
  }

  it('keeps each heading of the preview whole on a 360 px wide screen', async () => {
    await page.goto(`${stack.origin}/dev/`)
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
    await connect()
    await page.locator('#panel').evaluate((iframe: HTMLIFrameElement) => (iframe.style.width = '360px'))
    await preview()
    const headings = panel.locator('.sync-plan thead th')
    expect(await headings.allTextContents()).toEqual(['Change', 'Members', 'For example'])
    // Lines each word of a heading is laid out on: more than one means it was broken inside.
    const linesPerWord = await headings.evaluateAll((cells) =>
      cells.flatMap((cell) => {
        const text = cell.firstChild as Text
        return [...text.data.matchAll(/\S+/g)].map((word) => {
          const range = document.createRange()
          range.setStart(text, word.index)
          range.setEnd(text, word.index + word[0].length)
          return `${word[0]}: ${new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size}`
        })
      }),
    )
    expect(linesPerWord).toEqual(['Change: 1', 'Members: 1', 'For: 1', 'example: 1'])
  })

  it('forgets the preview on Disconnect: connecting again starts from no file', async () => {
    await page.goto(`${stack.origin}/dev/`)
    await page.locator('#cid').selectOption('c_other')
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
    await connect()
    await preview()

    await panel.getByRole('tab', { name: 'Connection' }).click()
    await panel.getByRole('button', { name: 'Disconnect' }).click()
    await panel.getByRole('button', { name: 'Yes, disconnect' }).click()
    await connect()
    await panel.getByRole('tab', { name: 'Import' }).click()
    const card = panel.locator('.sync-card')
    await card.getByRole('button', { name: 'Preview' }).waitFor()
    expect(await card.getByRole('table').count()).toBe(0)
    expect(await card.getByRole('button', { name: 'Preview' }).isDisabled()).toBe(true)
    expect(await card.getByRole('button', { name: 'Start sync' }).isDisabled()).toBe(true)
  })
})
