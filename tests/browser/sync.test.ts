/**
 * Bringing existing members in a real browser: a member file through preview, start and progress
 * to Activity, and the events recorded before Kit was connected sent from the replay offer. Set
 * SCREENSHOTS=1 to also save docs/sync-progress.png (the server then gets a small Kit budget, so the
 * sync is caught half-way).
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, ConsoleMessage, FrameLocator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chromiumAvailable, eventually, startStack, type Stack } from './harness.ts'

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))
const SCREENSHOTS = process.env.SCREENSHOTS === '1'
const KEY = 'kit_test_key'
const MEMBERS = 20

const squash = (value: string | null) => value?.replace(/\s+/g, ' ').trim() ?? ''
const syncEmail = (i: number) => `existing${String(i).padStart(2, '0')}@example.com`

function memberCsv(): string {
  const rows = Array.from({ length: MEMBERS }, (_, i) => `${syncEmail(i + 1)},m_existing_${i + 1},Member ${i + 1},gold`)
  return ['email,member_id,first_name,access_level', ...rows].join('\n') + '\n'
}

describe.skipIf(!chromiumAvailable && !process.env.CI)('bringing existing members in the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
  let panel: FrameLocator
  /** Console errors, uncaught exceptions and Content-Security-Policy violations of the page and its frames. */
  let problems: string[]

  beforeAll(async () => {
    stack = await startStack(SCREENSHOTS ? { env: { KIT_RATE_LIMIT: '8', KIT_RATE_WINDOW_MS: '4000' } } : {})
  })
  afterAll(async () => {
    await stack?.stop()
  })

  beforeEach(async () => {
    problems = []
    context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } })
    await context.exposeBinding('reportPolicyViolation', ({ frame }, detail: string) => {
      problems.push(`CSP ${new URL(frame.url()).pathname}: ${detail}`)
    })
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        const report = (window as unknown as { reportPolicyViolation: (detail: string) => void }).reportPolicyViolation
        report(`${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`)
      })
    })
    page = await context.newPage()
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error' || /Content Security Policy/i.test(message.text()))
        problems.push(`${message.location().url}: ${message.text()}`)
    })
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
    panel = page.frameLocator('#panel')
  })
  afterEach(async () => {
    try {
      expect(problems, 'console errors and CSP violations').toEqual([])
    } finally {
      await context.close()
    }
  })

  async function openDev(cid: string): Promise<void> {
    await page.goto(`${stack.origin}/dev/`)
    if (cid !== 'c_demo') await page.locator('#cid').selectOption(cid)
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
  }

  async function connect(): Promise<void> {
    await panel.getByLabel('Kit API key', { exact: true }).fill(KEY)
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
  }

  async function simulate(type: string, email: string, memberId: string): Promise<void> {
    await page.locator('#sim-type').selectOption(type)
    await page.locator('#simulate [name="email"]').fill(email)
    await page.locator('#simulate [name="member_id"]').fill(memberId)
    await page.locator('#simulate [name="subscription_id"]').fill(`s_${memberId}`)
    await page.locator('#sim-status').evaluate((status) => (status.textContent = ''))
    await page.getByRole('button', { name: 'Send event' }).click()
    await page.locator('#sim-status').getByText('/events answered 202.').waitFor()
  }

  const tagsOf = (email: string) => {
    const account = stack.kit.account(KEY)
    const subscriber = account.subscribers.find((s) => s.email_address === email)
    return subscriber ? [...subscriber.tags].map((id) => account.tags.find((t) => t.id === id)?.name).sort() : null
  }

  it(`syncs a file of ${MEMBERS} members: preview table, start, the bar reaching 100 %, and Activity listing them`, async () => {
    await openDev('c_demo')
    await connect()

    await panel.getByRole('tab', { name: 'Import' }).click()
    const card = panel.locator('.sync-card')
    await card
      .getByLabel('Member file (CSV or JSON Lines)')
      .setInputFiles({ name: 'members.csv', mimeType: 'text/csv', buffer: Buffer.from(memberCsv()) })
    await card.getByRole('button', { name: 'Preview' }).click()
    const preview = card.getByRole('table', { name: 'Preview: what the sync would do in Kit' })
    await preview.waitFor()
    const cells = (name: string) =>
      preview
        .getByRole('row', { name: new RegExp(`^${name}`) })
        .locator('th, td')
        .allTextContents()
    const newInKit = await cells('New in Kit')
    expect(newInKit.slice(0, 2)).toEqual(['New in Kit', String(MEMBERS)])
    expect(newInKit[2]).toMatch(new RegExp(`^${syncEmail(1)}, ${syncEmail(2)}`))
    expect((await cells('Tag “Access: gold” added')).slice(0, 2)).toEqual(['Tag “Access: gold” added', String(MEMBERS)])

    await card.getByRole('button', { name: 'Start sync' }).click()
    await page.locator('#toasts').getByText(`Sync started: ${MEMBERS} members on their way to Kit.`).waitFor()
    const bar = card.getByRole('progressbar', { name: 'Sync progress' })
    expect(await bar.getAttribute('max')).toBe(String(MEMBERS))

    if (SCREENSHOTS) {
      await eventually(
        async () => {
          const value = Number(await bar.evaluate((el: HTMLProgressElement) => el.value))
          expect(value).toBeGreaterThanOrEqual(MEMBERS / 4)
          expect(value).toBeLessThan(MEMBERS)
        },
        60_000,
        200,
      )
      mkdirSync(DOCS, { recursive: true })
      await card.screenshot({ path: `${DOCS}sync-progress.png` })
    }

    await eventually(async () => expect(await bar.evaluate((el: HTMLProgressElement) => el.value)).toBe(MEMBERS), 90_000, 500)
    expect(squash(await card.locator('.status-line').textContent())).toBe(`Last sync completed — ${MEMBERS} of ${MEMBERS} sent to Kit`)

    await panel.getByRole('tab', { name: 'Activity' }).click()
    const activity = panel.locator('section', { has: panel.getByRole('heading', { name: 'Activity' }) })
    await eventually(async () => {
      const synced = activity.locator('li.delivery', { hasText: 'member.snapshot' })
      expect(await synced.count()).toBe(MEMBERS)
      expect(await synced.filter({ hasText: 'Delivered' }).count()).toBe(MEMBERS)
    }, 20_000)
    expect(squash(await activity.locator('li.delivery', { hasText: syncEmail(MEMBERS) }).textContent())).toContain(
      'Tag added: Access: gold',
    )
    for (let i = 1; i <= MEMBERS; i++) expect(tagsOf(syncEmail(i)), syncEmail(i)).toEqual(['Access: gold'])
  })

  it('takes a raw export from another platform: its columns mapped in the preview, the mapping remembered for the next file', async () => {
    await openDev('c_demo')
    const keyField = panel.getByLabel('Kit API key', { exact: true })
    await Promise.race([keyField.waitFor(), panel.getByText('Connected to Kit', { exact: true }).waitFor()])
    if (await keyField.isVisible()) await connect()

    const header = 'Email Address,ID,First Name,Company,Notes'
    const exportFile = (name: string, rows: string[]) => ({
      name,
      mimeType: 'text/csv',
      buffer: Buffer.from([header, ...rows].join('\r\n') + '\r\n'),
    })
    await panel.getByRole('tab', { name: 'Import' }).click()
    const card = panel.locator('.sync-card')
    await card
      .getByLabel('Member file (CSV or JSON Lines)')
      .setInputFiles(
        exportFile('export.csv', [
          'raw01@example.com,m_raw_1,Ann,Acme,"Met at the fair,\r\nasked for ""pricing"""',
          'raw02@example.com,m_raw_2,Bob,Initech,',
        ]),
      )
    await card.getByRole('button', { name: 'Preview' }).click()
    const columns = card.getByRole('group', { name: 'Columns in the file' })
    await columns.waitFor()
    expect(await columns.getByLabel('Email Address', { exact: true }).inputValue()).toBe('email')
    expect(await columns.getByLabel('ID', { exact: true }).inputValue()).toBe('member_id')
    expect(await columns.getByLabel('Notes', { exact: true }).inputValue()).toBe('')
    const start = card.getByRole('button', { name: 'Start sync' })
    expect(await start.isEnabled()).toBe(true)

    await columns.getByLabel('Company', { exact: true }).selectOption('mk_company')
    expect(await start.isEnabled()).toBe(false)
    await card.getByRole('button', { name: 'Preview' }).click()
    await eventually(async () => expect(await start.isEnabled()).toBe(true))
    await start.click()
    await page.locator('#toasts').getByText('Sync started: 2 members on their way to Kit.').waitFor()
    await eventually(
      async () => {
        const names = ['raw01@example.com', 'raw02@example.com'].map(
          (email) => stack.kit.account(KEY).subscribers.find((s) => s.email_address === email)?.first_name,
        )
        expect(names).toEqual(['Ann', 'Bob'])
      },
      60_000,
      500,
    )

    await card
      .getByLabel('Member file (CSV or JSON Lines)')
      .setInputFiles(exportFile('next-export.csv', ['raw03@example.com,m_raw_3,Cy,Globex,']))
    await card.getByRole('button', { name: 'Preview' }).click()
    await columns.waitFor()
    await eventually(async () => expect(await columns.getByLabel('Company', { exact: true }).inputValue()).toBe('mk_company'))
  })

  it('offers the events recorded before Connect with the right count, and sends them to Kit', async () => {
    await openDev('c_other')
    await panel.getByLabel('Kit API key', { exact: true }).waitFor()
    await simulate('user.signed_up', 'early1@example.com', 'm_early1')
    await simulate('user.signed_up', 'early2@example.com', 'm_early2')
    await simulate('subscription.started', 'early1@example.com', 'm_early1')
    expect(tagsOf('early1@example.com')).toBeNull()

    await connect()
    const offer = panel.getByRole('button', { name: 'Send 3 events recorded while Kit was not connected' })
    await offer.waitFor()
    expect(squash(await panel.locator('.replay').textContent())).toContain(
      '3 events were recorded while Kit was not connected, for 2 members: 2 × Member signs up, 1 × Subscription starts.',
    )

    await offer.click()
    await panel.locator('.replay').getByText('3 events on the way to Kit, oldest first. Activity shows each one as it is sent.').waitFor()
    await eventually(async () => {
      expect(tagsOf('early1@example.com')).toEqual(['Active Member', 'New Member'])
      expect(tagsOf('early2@example.com')).toEqual(['New Member'])
    })
    expect(await offer.count()).toBe(0)
    await panel.getByRole('tab', { name: 'Activity' }).click()
    const activity = panel.locator('section', { has: panel.getByRole('heading', { name: 'Activity' }) })
    await eventually(async () => {
      const early = activity.locator('li.delivery', { hasText: /early[12]@example\.com/ })
      expect(await early.count()).toBe(3)
      expect(await early.filter({ hasText: 'Delivered' }).count()).toBe(3)
    })
  })
})
