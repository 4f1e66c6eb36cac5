// Over 400 lines: the mapping editor's 16 browser flows share one started stack, one seeded Kit and their page helpers.
import type { BrowserContext, Frame, FrameLocator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chromiumAvailable, eventually, startStack, type Stack } from './harness.ts'

const KEY = 'kit_test_key'
// Kit lists tags in the order they were made: "Gold Circle" before "Gold", as an owner's account grows.
const TAGS = [
  'New Member',
  'VIP',
  'Vintage',
  'Volunteer',
  'Verified',
  'Vendor',
  'Visitor',
  'Veteran',
  'Viewer',
  'Voter',
  'Gold Circle',
  'Newsletter',
  'Gold',
]

const text = async (locator: ReturnType<FrameLocator['locator']>) => (await locator.textContent())?.replace(/\s+/g, ' ').trim() ?? ''

// Skipped on a developer machine without Chromium; in CI (which installs it) a missing browser fails.
describe.skipIf(!chromiumAvailable && !process.env.CI)('the mapping editor inside the local App Station', () => {
  let stack: Stack
  let context: BrowserContext
  let page: Page
  let panel: FrameLocator
  let cspViolations: string[]
  /** Settings API calls the panel made, as "METHOD /path". */
  let apiCalls: string[]

  beforeAll(async () => {
    stack = await startStack()
    stack.kit.seed(KEY, {
      tags: TAGS,
      forms: [{ name: 'Spring newsletter' }],
      sequences: [{ name: 'Welcome series' }],
    })
  })
  afterAll(async () => {
    await stack?.stop()
  })

  beforeEach(async () => {
    context = await stack.browser.newContext({ viewport: { width: 1200, height: 800 } })
    cspViolations = []
    apiCalls = []
    await context.exposeBinding('reportPolicyViolation', (_source, detail: string) => cspViolations.push(detail))
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        const report = (window as unknown as { reportPolicyViolation: (detail: string) => void }).reportPolicyViolation
        report(`${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`)
      })
    })
    page = await context.newPage()
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text())
    })
    page.on('request', (request) => {
      const url = new URL(request.url())
      if (url.pathname.startsWith('/api/v1/')) apiCalls.push(`${request.method()} ${url.pathname.slice('/api/v1'.length)}`)
    })
    panel = page.frameLocator('#panel')
  })
  afterEach(async () => {
    try {
      expect(cspViolations, 'Content-Security-Policy violations').toEqual([])
    } finally {
      await context.close()
    }
  })

  const panelFrame = (): Frame => {
    const frame = page.frames().find((f) => new URL(f.url()).pathname === '/panel/')
    if (!frame) throw new Error('The panel frame is not there')
    return frame
  }
  const card = (type: string) => panel.getByRole('article', { name: `(${type})` })
  const combobox = (name: string) => panel.getByRole('combobox', { name, exact: true })
  const chips = (type: string, list: string) => card(type).getByRole('list', { name: `${list} for ${type}`, exact: true })
  const kitTagCreations = () => stack.kit.requests.filter((r) => r.method === 'POST' && r.path === '/v4/tags').length

  /** Shows a section of the panel with a click on its tab. */
  async function showSection(name: string): Promise<void> {
    await panel.getByRole('tab', { name: new RegExp(`^${name}`) }).click()
  }

  /** The Rules section with every event open, those under "Not used" included. */
  async function openAllEvents(): Promise<void> {
    await showSection('Rules')
    await card('user.signed_up').waitFor()
    const notUsed = panel.getByRole('button', { name: /^Not used \(\d+\)$/ })
    if ((await notUsed.count()) > 0 && (await notUsed.getAttribute('aria-expanded')) === 'false') await notUsed.click()
    const closed = panel.locator('article.event h3 > button[aria-expanded="false"]')
    while ((await closed.count()) > 0) await closed.first().click()
  }

  /** Opens /dev/ for a community, connects it to the stand-in if needed, starts from the default mappings, and opens every event. */
  async function openConnected(cid = 'c_demo'): Promise<void> {
    await page.goto(`${stack.origin}/dev/`)
    if (cid !== 'c_demo') await page.locator('#cid').selectOption(cid)
    await panel.getByRole('heading', { name: 'Kit connection' }).waitFor()
    const keyInput = panel.getByLabel('Kit API key', { exact: true })
    const connected = panel.getByText('Connected to Kit', { exact: true })
    await keyInput.or(connected).first().waitFor()
    if (await keyInput.isVisible()) {
      await keyInput.fill(KEY)
      await panel.getByRole('button', { name: 'Connect', exact: true }).click()
      await connected.waitFor()
    }
    await showSection('Rules')
    await card('user.signed_up').waitFor()
    const restore = panel.getByRole('button', { name: 'Restore defaults' })
    await restore.click()
    const save = panel.getByRole('button', { name: 'Save mappings' })
    if (await save.isVisible()) {
      await save.click()
      await panel.getByText('All changes saved').waitFor()
    }
    await openAllEvents()
  }

  it('picks the highlighted match when Enter is pressed, and lists how many more there are', async () => {
    await openConnected()
    const input = combobox('Add tags for user.updated')
    await input.fill('vi')
    await panel.getByRole('option', { name: 'VIP', exact: true }).waitFor()
    await panel.getByRole('option', { name: 'Create tag “vi” in Kit on first use' }).waitFor()
    await input.press('Enter')
    await chips('user.updated', 'Add tags').getByText('VIP', { exact: true }).waitFor()
    expect(await chips('user.updated', 'Add tags').getByText('vi', { exact: true }).count()).toBe(0)

    await input.fill('v')
    await panel.getByText(/^\d+ more — keep typing$/).waitFor()
    expect(await card('user.updated').getByRole('option').count()).toBe(9)
  })

  it('picks the closest match on Enter although Kit lists a longer name first', async () => {
    await openConnected()
    const input = combobox('Add tags for user.updated')
    await input.fill('go')
    await panel.getByRole('option', { name: 'Gold Circle', exact: true }).waitFor()
    await input.press('Enter')
    await chips('user.updated', 'Add tags').getByText('Gold', { exact: true }).waitFor()
    expect(await chips('user.updated', 'Add tags').getByText('Gold Circle', { exact: true }).count()).toBe(0)
  })

  it('opens a picker’s list on ArrowDown or typing, never on focus alone', async () => {
    await openConnected()
    const input = combobox('Add to forms for user.updated')
    await input.click()
    expect(await input.getAttribute('aria-expanded')).toBe('false')
    expect(await card('user.updated').getByRole('listbox').filter({ visible: true }).count()).toBe(0)
    await input.press('ArrowDown')
    await card('user.updated').getByRole('option', { name: 'Spring newsletter' }).waitFor()
    expect(await input.getAttribute('aria-expanded')).toBe('true')
    await input.press('Escape')
    expect(await input.getAttribute('aria-expanded')).toBe('false')
    await input.pressSequentially('spr')
    await card('user.updated').getByRole('option', { name: 'Spring newsletter' }).waitFor()
  })

  it('confirms a field-mapping box with Enter without saving, and Discard still undoes every change', async () => {
    await openConnected()
    apiCalls.length = 0
    const unsubscribe = panel.getByLabel('Unsubscribe the member in Kit for user.deleted', { exact: true })
    await unsubscribe.check()
    await showSection('Fields')
    await panel.getByRole('button', { name: 'Add field mapping' }).click()
    const source = panel.getByLabel('Member field 3', { exact: true })
    await source.fill('mk_member_since')
    await source.press('Enter')
    const kit = panel.getByLabel('Kit field 3', { exact: true })
    await kit.fill('Member since')
    await kit.press('Enter')
    expect(await text(panel.locator('.savebar-status'))).toBe('Unsaved changes')

    // Discard is still offered (a save would have taken it away) and undoes the unrelated change too.
    await panel.getByRole('button', { name: 'Discard changes' }).click()
    await panel.getByText('All changes saved').waitFor()
    expect(await panel.getByLabel('Member field 3', { exact: true }).count()).toBe(0)
    await openAllEvents()
    expect(await unsubscribe.isChecked()).toBe(false)
    expect(apiCalls).not.toContain('PUT /mappings')
  })

  it('reaches Save from the keyboard: a skip link at the top of the form, and Ctrl+S from anywhere', async () => {
    await openConnected()
    const focused = () => panelFrame().evaluate(() => document.activeElement?.textContent?.replace(/\s+/g, ' ').trim() ?? '')
    const unsubscribe = panel.getByLabel('Unsubscribe the member in Kit for user.deleted', { exact: true })
    await unsubscribe.check()

    // Back from the first picker of the form: the skip link comes before anything else in it.
    await combobox('Add tags for user.signed_up').focus()
    let presses = 0
    while (!/^Skip to Save mappings/.test(await focused()) && presses < 4) {
      await page.keyboard.press('Shift+Tab')
      presses++
    }
    expect(await focused()).toMatch(/^Skip to Save mappings \(or press Ctrl\+S\)$/)
    await page.keyboard.press('Enter')
    expect(await focused()).toBe('Save mappings')
    await page.keyboard.press('Enter')
    await panel.getByText('All changes saved').waitFor()
    const saves = () => apiCalls.filter((call) => call === 'PUT /mappings').length
    const savedOnce = saves()

    await unsubscribe.uncheck()
    const input = combobox('Add tags for user.updated')
    await input.fill('half-typ')
    await input.press('Control+s')
    await panel.getByText('All changes saved').waitFor()
    expect(saves()).toBe(savedOnce + 1)
    expect(await unsubscribe.isChecked()).toBe(false)
  })

  it('drops the "new" mark once an event has created the tag in Kit', async () => {
    await openConnected()
    const name = `Founders ${Date.now()}`
    const input = combobox('Add tags for user.signed_up')
    await input.fill(name)
    await panel.getByRole('option', { name: `Create tag “${name}” in Kit on first use` }).click()
    const chip = chips('user.signed_up', 'Add tags').locator('li', { hasText: name })
    await chip.locator('.chip-new').waitFor()
    await panel.getByRole('button', { name: 'Save mappings' }).click()
    await panel.getByText('All changes saved').waitFor()

    await page.locator('#sim-type').selectOption('user.signed_up')
    await page.locator('#simulate [name="email"]').fill('founder@example.com')
    await page.locator('#simulate [name="member_id"]').fill('m_founder')
    await page.getByRole('button', { name: 'Send event' }).click()
    await page.locator('#sim-status').getByText('/events answered 202.').waitFor()
    await eventually(async () => expect(stack.kit.account(KEY).tags.map((t) => t.name)).toContain(name), 20_000)
    // Activity shows the delivery; back in Rules the mark goes (the server may still hold Kit's list from before for up to 30 s).
    await showSection('Activity')
    await panel.locator('li.delivery', { hasText: 'founder@example.com' }).waitFor()
    await openAllEvents()
    await chip.locator('.chip-new').waitFor({ state: 'detached', timeout: 60_000 })
    expect(await chip.count()).toBe(1)
  }, 120_000)

  it('never lands on the hidden list when tabbing out of a picker', async () => {
    await openConnected()
    const input = combobox('Add tags for user.signed_up')
    await input.fill('v')
    await panel.getByRole('listbox').filter({ visible: true }).waitFor()
    await input.press('Tab')
    const focused = await panelFrame().evaluate(() => {
      const el = document.activeElement as HTMLElement | null
      return {
        inList: !!el?.closest('[role="listbox"]'),
        visible: !!el?.checkVisibility(),
        label: el?.getAttribute('aria-label') ?? el?.textContent?.trim() ?? '',
      }
    })
    expect(focused.inList).toBe(false)
    expect(focused.visible).toBe(true)
    expect(await input.getAttribute('aria-expanded')).toBe('false')
  })

  it('creates nothing in Kit when a new tag is chosen and the changes are discarded', async () => {
    await openConnected()
    apiCalls.length = 0
    const before = kitTagCreations()
    const tagsBefore = stack.kit.account(KEY).tags.length
    const input = combobox('Add tags for user.deleted')
    await input.fill('Brand new tag')
    await panel.getByRole('option', { name: 'Create tag “Brand new tag” in Kit on first use' }).click()
    await chips('user.deleted', 'Add tags').getByText('Brand new tag').waitFor()
    await panel.getByRole('button', { name: 'Discard changes' }).click()
    await panel.getByText('All changes saved').waitFor()
    expect(await card('user.deleted').getByText('Brand new tag').count()).toBe(0)

    expect(kitTagCreations() - before).toBe(0)
    expect(stack.kit.account(KEY).tags.length).toBe(tagsBefore)
    expect(stack.kit.account(KEY).tags.map((t) => t.name)).not.toContain('Brand new tag')
    expect(apiCalls.filter((call) => !call.startsWith('GET '))).toEqual([])
  })

  it('warns when an event both adds tags and unsubscribes, and fixes it in one click', async () => {
    await openConnected()
    const unsubscribe = panel.getByLabel('Unsubscribe the member in Kit for subscription.canceled', { exact: true })
    await unsubscribe.check()
    await card('subscription.canceled').getByText('This event adds tags and then unsubscribes the member').waitFor()
    await panel.getByRole('button', { name: 'Do not unsubscribe for subscription.canceled', exact: true }).click()
    expect(await unsubscribe.isChecked()).toBe(false)
    expect(await card('subscription.canceled').locator('.guard').count()).toBe(0)
  })

  it('saves an unsubscribe on sign-up only once it is confirmed', async () => {
    await openConnected()
    await panel.getByLabel('Unsubscribe the member in Kit for user.signed_up', { exact: true }).check()
    const confirmation = card('user.signed_up').locator('.guard-confirm')
    await confirmation.getByText('Every person who joins would be unsubscribed').waitFor()
    await panel.getByRole('button', { name: 'Save mappings' }).click()
    await panel.getByText('Nothing was saved: fix the problems marked below first.').waitFor()
    expect(await panelFrame().evaluate(() => document.activeElement?.textContent?.trim())).toMatch(/^Yes, unsubscribe new members/)
    expect(apiCalls).not.toContain('PUT /mappings')

    await panel.getByRole('button', { name: 'Yes, unsubscribe new members for user.signed_up', exact: true }).click()
    await panel.getByRole('button', { name: 'Save mappings' }).click()
    await panel.getByText('All changes saved').waitFor()
    expect(apiCalls).toContain('PUT /mappings')
  })

  it('refuses the same tag in Add and Remove of one event until one side is kept', async () => {
    await openConnected()
    const remove = combobox('Remove tags for user.signed_up')
    await remove.fill('New Member')
    await remove.press('Enter')
    const guard = card('user.signed_up').locator('.guard-error')
    await guard.getByText('“New Member” is both added and removed by this event').waitFor()
    await panel.getByRole('button', { name: 'Save mappings' }).click()
    await panel.getByText('Nothing was saved: fix the problems marked below first.').waitFor()
    await panel.getByRole('button', { name: 'Keep it in Add tags only for user.signed_up', exact: true }).click()
    expect(await guard.count()).toBe(0)
    expect(await chips('user.signed_up', 'Add tags').getByText('New Member').count()).toBe(1)
    expect(await card('user.signed_up').getByRole('list', { name: 'Remove tags for user.signed_up', exact: true }).count()).toBe(0)
  })

  it('refuses a placeholder the event never carries, beside the picker', async () => {
    await openConnected()
    const input = combobox('Add tags for user.signed_up')
    await input.fill('Plan {{subscription.plan}}')
    await input.press('Enter')
    await card('user.signed_up')
      .getByRole('alert')
      .filter({ hasText: '{{subscription.plan}} is never filled for user.signed_up, so the tag would never be applied' })
      .waitFor()
    expect(await input.getAttribute('aria-invalid')).toBe('true')
    expect(await chips('user.signed_up', 'Add tags').getByText('Plan {{subscription.plan}}').count()).toBe(0)
  })

  it('warns about a mapped form that was archived in Kit and removes it in one click', async () => {
    await openConnected()
    const forms = combobox('Add to forms for user.updated')
    await forms.fill('Spring')
    await forms.press('Enter')
    await chips('user.updated', 'Add to forms').getByText('Spring newsletter').waitFor()
    await panel.getByRole('button', { name: 'Save mappings' }).click()
    await panel.getByText('All changes saved').waitFor()

    stack.kit.account(KEY).forms.find((f) => f.name === 'Spring newsletter')!.archived = true
    // Connecting again drops the server's short-lived copy of Kit's lists.
    await showSection('Connection')
    await panel.getByRole('button', { name: 'Disconnect' }).click()
    await panel.getByRole('button', { name: 'Yes, disconnect' }).click()
    await panel.getByLabel('Kit API key', { exact: true }).fill(KEY)
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
    await openAllEvents()
    const warning = card('user.updated').locator('.guard-warning')
    await warning.getByText('The form “Spring newsletter” is archived in Kit: members cannot be added to it.').waitFor()
    await panel.getByRole('button', { name: 'Remove “Spring newsletter” for user.updated', exact: true }).click()
    expect(await warning.count()).toBe(0)
    await panel.getByRole('button', { name: 'Save mappings' }).click()
    await panel.getByText('All changes saved').waitFor()
    stack.kit.account(KEY).forms.find((f) => f.name === 'Spring newsletter')!.archived = false
  })

  it('keeps Save and Discard in view while there are unsaved changes, wherever the page is scrolled', async () => {
    await openConnected()
    const inView = async () => {
      const box = await panel.getByRole('button', { name: 'Save mappings' }).boundingBox()
      const height = await page.evaluate(() => window.innerHeight)
      return !!box && box.y >= 0 && box.y + box.height <= height
    }
    await card('user.signed_up').scrollIntoViewIfNeeded()
    await panel.getByLabel('Unsubscribe the member in Kit for user.deleted', { exact: true }).check()
    await eventually(async () => expect(await inView()).toBe(true), 5_000, 100)
    expect(await panel.getByRole('button', { name: 'Discard changes' }).isVisible()).toBe(true)

    // Scroll the host page so that the middle, then the lower part of the form fills the screen.
    for (const fraction of [0.4, 0.7]) {
      const form = (await panel.locator('form.mappings-form').boundingBox())!
      await page.evaluate((y) => window.scrollBy(0, y), form.y + form.height * fraction - 400)
      await eventually(async () => expect(await inView()).toBe(true), 5_000, 100)
    }
  })

  it('connects, maps and saves with the keyboard alone', async () => {
    await page.goto(`${stack.origin}/dev/`)
    await page.locator('#cid').selectOption('c_other')
    const keyInput = panel.getByLabel('Kit API key', { exact: true })
    await keyInput.waitFor()
    const focusedName = () =>
      panelFrame().evaluate(() => {
        const el = document.activeElement as HTMLElement | null
        if (!el || el === document.body) return ''
        const labelled = el.id ? document.querySelector(`label[for="${el.id}"]`)?.textContent : null
        return (labelled ?? el.getAttribute('aria-label') ?? el.textContent ?? '').replace(/\s+/g, ' ').trim()
      })
    async function tabTo(name: string | RegExp, limit = 200): Promise<void> {
      for (let i = 0; i < limit; i++) {
        const current = await focusedName()
        if (typeof name === 'string' ? current === name : name.test(current)) return
        await page.keyboard.press('Tab')
      }
      throw new Error(`Tab never reached ${String(name)}`)
    }

    async function shiftTabTo(name: string | RegExp, limit = 60): Promise<void> {
      for (let i = 0; i < limit; i++) {
        const current = await focusedName()
        if (typeof name === 'string' ? current === name : name.test(current)) return
        await page.keyboard.press('Shift+Tab')
      }
      throw new Error(`Shift+Tab never reached ${String(name)}`)
    }

    await panelFrame().evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
    await page.locator('#panel').focus()
    await tabTo('Kit API key')
    await page.keyboard.type(KEY)
    await page.keyboard.press('Enter')
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()

    // Back to the section tabs, the arrow to Rules, then into the section.
    await shiftTabTo('Connection')
    await page.keyboard.press('ArrowRight')
    expect(await focusedName()).toBe('Rules')
    await panel.getByRole('button', { name: /^Not used \(\d+\)$/ }).waitFor()
    await tabTo(/^Not used \(\d+\)$/)
    await page.keyboard.press('Enter')
    await tabTo(/^Member updates their profile → /)
    await page.keyboard.press('Enter')
    await tabTo('Add tags for user.updated')
    await page.keyboard.type('Volun')
    await page.keyboard.press('Enter')
    await chips('user.updated', 'Add tags').getByText('Volunteer', { exact: true }).waitFor()
    await tabTo(/^Save mappings$/)
    await page.keyboard.press('Enter')
    await panel.getByText('All changes saved').waitFor()

    await page.reload()
    await page.locator('#cid').selectOption('c_other')
    await panel.getByText('Connected to Kit', { exact: true }).waitFor()
    await showSection('Rules')
    await panel.getByRole('button', { name: 'Member updates their profile → add Volunteer' }).click()
    await chips('user.updated', 'Add tags').getByText('Volunteer', { exact: true }).waitFor()
  })

  it('fits a 360 px wide screen without sideways scrolling, with warnings, an open list and the save bar', async () => {
    await openConnected()
    await page.locator('#panel').evaluate((iframe: HTMLIFrameElement) => (iframe.style.width = '360px'))
    await panel.getByLabel('Unsubscribe the member in Kit for subscription.canceled', { exact: true }).check()
    await card('subscription.canceled').locator('.guard-warning').waitFor()
    const input = combobox('Add tags for subscription.canceled')
    await input.fill('v')
    await panel.getByText(/more — keep typing/).waitFor()
    const widths = await eventually(async () => {
      const measured = await panelFrame().evaluate(() => ({
        client: document.documentElement.clientWidth,
        scroll: document.documentElement.scrollWidth,
      }))
      expect(measured.client).toBeLessThanOrEqual(360)
      return measured
    })
    expect(widths.scroll).toBeLessThanOrEqual(widths.client)
    expect(await text(panel.locator('.savebar-status'))).toBe('Unsaved changes')
  })
})
