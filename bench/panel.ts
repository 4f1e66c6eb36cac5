/**
 * Benchmark 4 — panel weight and start.
 *
 * Weight, gzip (zlib default level 6) of each file, summed, in two figures:
 * - first screen: dist/ui/panel/index.html plus every script, module preload and stylesheet it
 *   references, and the chunks those scripts import statically — what the browser fetches before
 *   the panel can run (goal ≤ 50 KiB);
 * - whole panel: the page plus every script and stylesheet of the build (dist/ui/assets), the
 *   sections fetched on demand included (goal ≤ 75 KiB).
 *
 * Start: headless Chromium opens the local App Station page (/dev/), which frames /panel/ and
 * answers its handshake. Inside the panel frame a probe (injected before any page script) records
 * performance.now() — milliseconds since that frame's navigation started — at the first moment an
 * input labelled "Kit API key" is visible and enabled. Each run uses a fresh browser context, so
 * nothing is cached. Goal: < 500 ms (median).
 *
 * BENCH_PANEL_RUNS (default 7) sets the number of page loads; BENCH_PANEL_BUILD=1 rebuilds the UI first.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { get } from 'node:http'
import { dirname, join, resolve } from 'node:path'
import { gzipSync } from 'node:zlib'
import { chromium, type Browser, type Frame, type Page } from 'playwright-core'
import { envInt, median, newSecrets, ROOT, round, sleep, tempDir } from './lib/env.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { startServer } from './lib/server.ts'
import { RESULTS } from './intake.ts'
import { CHROMIUM_ARGS, CHROMIUM_PATH as CHROMIUM } from '../tests/helpers/chromium.ts'

const PANEL_HTML = join(ROOT, 'dist/ui/panel/index.html')
const ASSETS = join(ROOT, 'dist/ui/assets')
const DEV_HTML = join(ROOT, 'dist/dev/index.html')
const LABEL = 'Kit API key'
const FIRST_SCREEN_GOAL_KIB = 50
const WHOLE_GOAL_KIB = 75
const START_GOAL_MS = 500

/** Runs in every frame before its scripts; only the panel frame records anything. */
const READY_PROBE = `(() => {
  if (location.pathname !== '/panel/') return
  const label = ${JSON.stringify(LABEL)}
  const labelled = (el) => {
    if (el.getAttribute('aria-label')?.trim() === label) return true
    const ids = el.getAttribute('aria-labelledby')
    if (ids && ids.split(/\\s+/).map((id) => document.getElementById(id)?.textContent?.trim()).join(' ') === label) return true
    return Array.from(el.labels ?? []).some((l) => l.textContent.trim() === label)
  }
  const visible = (el) => el.checkVisibility({ opacityProperty: true, visibilityProperty: true }) && el.getBoundingClientRect().width > 0
  const check = () => {
    if (window.__kitPanelReady !== undefined) return true
    for (const el of document.querySelectorAll('input, textarea')) {
      if (!el.disabled && labelled(el) && visible(el)) {
        window.__kitPanelReady = performance.now()
        return true
      }
    }
    return false
  }
  const observer = new MutationObserver(() => { if (check()) observer.disconnect() })
  observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true })
  const frame = () => { if (!check()) requestAnimationFrame(frame) }
  requestAnimationFrame(frame)
})()`

interface Weight {
  files: { file: string; bytes: number; gzipBytes: number }[]
  bytes: number
  gzipBytes: number
}

function weightOf(paths: string[]): Weight {
  const files = paths.map((file) => {
    const content = readFileSync(file)
    return { file: file.slice(join(ROOT, 'dist/ui').length + 1), bytes: content.length, gzipBytes: gzipSync(content).length }
  })
  return { files, bytes: files.reduce((n, f) => n + f.bytes, 0), gzipBytes: files.reduce((n, f) => n + f.gzipBytes, 0) }
}

/** The chunks a built script imports statically (`import … from "./x.js"`, `import "./x.js"`); `import()` is left out. */
function staticImports(file: string): string[] {
  const code = readFileSync(file, 'utf8')
  return [...code.matchAll(/\bimport\s*(?:[\w$*{}\s,]+from\s*)?["'](\.{1,2}\/[^"']+\.js)["']/g)].map((m) =>
    resolve(dirname(file), m[1] as string),
  )
}

/** What the page loads before the panel runs: the page, what it references, and every chunk those scripts import statically. */
function firstScreenWeight(): Weight {
  const html = readFileSync(PANEL_HTML, 'utf8')
  const refs = [...html.matchAll(/<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"[^>]*>/g)]
    .filter((m) => /\.(m?js|css)$/.test(m[1] as string) && !/^https?:/.test(m[1] as string))
    .map((m) => resolve(dirname(PANEL_HTML), m[1] as string))
  const found = new Set<string>()
  const visit = (file: string) => {
    if (found.has(file)) return
    found.add(file)
    if (/\.m?js$/.test(file)) staticImports(file).forEach(visit)
  }
  refs.forEach(visit)
  return weightOf([PANEL_HTML, ...found])
}

/** The page and every script and stylesheet of the build, the sections fetched on demand included. */
function wholeWeight(): Weight {
  const assets = readdirSync(ASSETS)
    .filter((name) => /\.(m?js|css)$/.test(name))
    .sort()
    .map((name) => join(ASSETS, name))
  return weightOf([PANEL_HTML, ...assets])
}

function weightOutcome(name: string, what: string, weight: Weight, goalKib: number): Outcome {
  const kib = weight.gzipBytes / 1024
  return {
    name,
    figures: { gzip_kib: round(kib, 1), raw_kib: round(weight.bytes / 1024, 1), files: weight.files },
    goal: `≤ ${goalKib} KiB gzipped`,
    status: verdictOf(kib <= goalKib),
    verdict: `${what}: ${kib.toFixed(1)} KiB gzipped (${(weight.bytes / 1024).toFixed(1)} KiB raw) in ${weight.files.length} files`,
  }
}

async function panelFrame(page: Page): Promise<Frame> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const frame = page.frames().find((f) => f.url().startsWith('http') && new URL(f.url()).pathname === '/panel/')
    if (frame) return frame
    if (Date.now() > deadline) throw new Error('the local App Station page never framed /panel/')
    await sleep(10)
  }
}

interface StartRun {
  /** From the panel frame's navigation start to the key input being usable. */
  panelMs: number
  /** From the /dev/ navigation start to the same moment. */
  fromHostMs: number
}

async function measureStart(browser: Browser, origin: string): Promise<StartRun | string> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } })
  try {
    await context.addInitScript(READY_PROBE)
    const page = await context.newPage()
    await page.goto(`${origin}/dev/`)
    const frame = await panelFrame(page)
    const deadline = Date.now() + 15_000
    let ready: number | undefined
    while (ready === undefined) {
      ready = await frame.evaluate(() => (window as unknown as { __kitPanelReady?: number }).__kitPanelReady).catch(() => undefined)
      if (ready !== undefined) break
      if (Date.now() > deadline) {
        const text = (
          await frame
            .locator('body')
            .innerText()
            .catch(() => '')
        )
          .replace(/\s+/g, ' ')
          .slice(0, 160)
        return `no visible, enabled input labelled "${LABEL}" within 15 s (the panel showed: "${text}")`
      }
      await sleep(25)
    }
    const input = frame.getByLabel(LABEL, { exact: true })
    if (!(await input.isVisible()) || !(await input.isEnabled()))
      return `Playwright does not see the "${LABEL}" input as visible and enabled`
    const frameOrigin = await frame.evaluate(() => performance.timeOrigin)
    const pageOrigin = await page.evaluate(() => performance.timeOrigin)
    return { panelMs: ready, fromHostMs: frameOrigin + ready - pageOrigin }
  } finally {
    await context.close()
  }
}

function ensureBuild(): string | null {
  if (existsSync(PANEL_HTML) && existsSync(DEV_HTML) && process.env.BENCH_PANEL_BUILD !== '1') return null
  log('panel: building the UI and the local App Station page (npm run build:dev)…')
  try {
    execFileSync('npm', ['run', 'build:dev'], { cwd: ROOT, stdio: 'pipe', env: { ...process.env, NODE_ENV: 'production' } })
  } catch (err) {
    const output = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(-3).join(' ') ?? String(err)
    return `the UI build failed: ${output}`
  }
  if (!existsSync(DEV_HTML)) return 'the UI build did not produce dist/dev/index.html'
  return existsSync(PANEL_HTML) ? null : 'the UI build did not produce dist/ui/panel/index.html'
}

/** Status, content encoding and body size as sent (not decoded), for a client that accepts gzip and brotli. */
function onTheWire(url: string): Promise<{ status: number; encoding: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { 'accept-encoding': 'gzip, br' } }, (answer) => {
      let bytes = 0
      answer.on('data', (chunk: Buffer) => (bytes += chunk.length))
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, encoding: answer.headers['content-encoding'] ?? 'none', bytes }))
      answer.on('error', reject)
    }).on('error', reject)
  })
}

const skipped = (name: string, goal: string, reason: string): Outcome => ({
  name,
  figures: {},
  goal,
  status: 'skipped',
  verdict: `skipped: ${reason}`,
})

export async function panelBenchmark(): Promise<Outcome[]> {
  const startGoal = `< ${START_GOAL_MS} ms (median)`
  const buildProblem = ensureBuild()
  if (buildProblem) {
    const outcomes = [
      skipped('panel_first_screen', `≤ ${FIRST_SCREEN_GOAL_KIB} KiB gzipped`, buildProblem),
      skipped('panel_whole', `≤ ${WHOLE_GOAL_KIB} KiB gzipped`, buildProblem),
      skipped('panel_start', startGoal, buildProblem),
    ]
    outcomes.forEach(printOutcome)
    return outcomes
  }
  log(`panel: build from ${statSync(PANEL_HTML).mtime.toISOString()}`)
  const first = firstScreenWeight()
  const whole = wholeWeight()
  const onFirstScreen = new Set(first.files.map((f) => f.file))
  for (const f of whole.files) {
    const where = onFirstScreen.has(f.file) ? 'first screen' : 'on demand'
    log(`panel:   ${f.file.padEnd(44)} ${String(f.bytes).padStart(8)} B  → gzip ${String(f.gzipBytes).padStart(7)} B  ${where}`)
  }
  const firstOutcome = weightOutcome('panel_first_screen', 'first screen', first, FIRST_SCREEN_GOAL_KIB)
  const wholeOutcome = weightOutcome('panel_whole', 'whole panel', whole, WHOLE_GOAL_KIB)
  printOutcome(firstOutcome)
  printOutcome(wholeOutcome)

  let startOutcome: Outcome
  if (!existsSync(CHROMIUM)) {
    startOutcome = skipped('panel_start', startGoal, `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`)
  } else {
    startOutcome = await startBenchmark(startGoal, first)
  }
  printOutcome(startOutcome)
  return [firstOutcome, wholeOutcome, startOutcome]
}

async function startBenchmark(goal: string, weight: Weight): Promise<Outcome> {
  const runs = envInt('BENCH_PANEL_RUNS', 7)
  const server = await startServer({
    dir: tempDir('kit-bench-panel'),
    secrets: newSecrets(),
    kitUrl: 'http://127.0.0.1:9',
    development: true,
  })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  try {
    const largest = [...weight.files].sort((a, b) => b.bytes - a.bytes)[0]
    if (largest) {
      const wire = await onTheWire(`${server.url}/${largest.file}`)
      log(
        `panel: asked for /${largest.file} with accept-encoding gzip, br: ${wire.status}, content-encoding ${wire.encoding}, ${wire.bytes} B on the wire`,
      )
    }
    const results: StartRun[] = []
    for (let i = 0; i < runs; i++) {
      const run = await measureStart(browser, server.url)
      if (typeof run === 'string') return { name: 'panel_start', figures: {}, goal, status: 'skipped', verdict: `skipped: ${run}` }
      results.push(run)
      log(
        `panel: run ${i + 1}/${runs}: key input usable ${Math.round(run.panelMs)} ms after the panel's navigation (${Math.round(run.fromHostMs)} ms after opening /dev/)`,
      )
    }
    const panelMs = median(results.map((r) => r.panelMs))
    const fromHostMs = median(results.map((r) => r.fromHostMs))
    return {
      name: 'panel_start',
      figures: {
        runs,
        median_ms: Math.round(panelMs),
        min_ms: Math.round(Math.min(...results.map((r) => r.panelMs))),
        max_ms: Math.round(Math.max(...results.map((r) => r.panelMs))),
        median_from_host_page_ms: Math.round(fromHostMs),
        cache: 'cold (fresh browser context per run)',
      },
      goal,
      status: verdictOf(panelMs < START_GOAL_MS),
      verdict: `median ${Math.round(panelMs)} ms from the panel's navigation to a usable "${LABEL}" input over ${runs} cold loads (${Math.round(fromHostMs)} ms from opening /dev/)`,
    }
  } finally {
    await browser.close()
    await server.kill('SIGTERM')
  }
}

runIfMain(import.meta.url, panelBenchmark, RESULTS)
