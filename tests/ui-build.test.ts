/** `npm start` builds the UI again when its sources are newer than the build it would serve. */
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { uiBuildState } from '../scripts/ui-build.mjs'

let root: string

/** Writes a file under the temporary project, dated `minutesAgo`. */
function file(path: string, minutesAgo: number): void {
  const full = join(root, path)
  mkdirSync(dirname(full), { recursive: true })
  writeFileSync(full, path)
  const at = new Date(Date.now() - minutesAgo * 60_000)
  utimesSync(full, at, at)
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kit-ui-build-'))
  file('ui/src/App.vue', 30)
  file('ui/dev/main.ts', 30)
  file('shared/api.ts', 30)
  file('vite.config.ts', 30)
  file('vite.dev.config.ts', 30)
})
afterEach(() => rmSync(root, { recursive: true, force: true }))

describe('whether npm start must build the UI first', () => {
  it('asks for a build when there is none, or no local App Station page for the dev host', () => {
    expect(uiBuildState({ root })).toBe('missing')
    file('dist/ui/panel/index.html', 10)
    expect(uiBuildState({ root })).toBe('ok')
    expect(uiBuildState({ root, devHost: true })).toBe('missing')
    file('dist/dev/index.html', 10)
    expect(uiBuildState({ root, devHost: true })).toBe('ok')
  })

  it('serves a build newer than every source as it is', () => {
    file('dist/ui/panel/index.html', 10)
    file('dist/dev/index.html', 10)
    expect(uiBuildState({ root, devHost: true })).toBe('ok')
  })

  it.each(['ui/src/components/mappings/RefPicker.vue', 'ui/dev/dev.css', 'shared/limits.ts', 'vite.config.ts', 'vite.dev.config.ts'])(
    'builds again when %s changed after the build',
    (source) => {
      file('dist/ui/panel/index.html', 10)
      file('dist/dev/index.html', 10)
      file(source, 1)
      expect(uiBuildState({ root, devHost: true })).toBe('stale')
    },
  )

  it('judges the dev host’s build by its older half', () => {
    file('dist/ui/panel/index.html', 1)
    file('dist/dev/index.html', 40)
    expect(uiBuildState({ root })).toBe('ok')
    expect(uiBuildState({ root, devHost: true })).toBe('stale')
  })

  it('builds again over a build from before the panel and the page were split', () => {
    file('dist/ui/panel/index.html', 10)
    file('dist/ui/dev/index.html', 10)
    expect(uiBuildState({ root })).toBe('old_layout')
  })

  it('ignores what is not a source: installed packages and hidden files under ui/', () => {
    file('dist/ui/panel/index.html', 10)
    file('ui/node_modules/.vite/deps/vue.js', 1)
    file('ui/.DS_Store', 1)
    expect(uiBuildState({ root })).toBe('ok')
  })
})

describe('scripts/ensure-ui.mjs', () => {
  const scripts = fileURLToPath(new URL('../scripts/', import.meta.url))

  /** Runs the script in the temporary project, whose `build` only records that it ran. */
  function ensure(): { built: boolean; output: string } {
    mkdirSync(join(root, 'scripts'), { recursive: true })
    for (const name of ['ensure-ui.mjs', 'ui-build.mjs']) copyFileSync(join(scripts, name), join(root, 'scripts', name))
    const record = `node -e "require('fs').writeFileSync('built', '')"`
    writeFileSync(join(root, 'package.json'), JSON.stringify({ private: true, scripts: { build: record } }))
    const run = spawnSync(process.execPath, ['scripts/ensure-ui.mjs'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, KIT_DEV_HOST: '0' },
    })
    expect(run.status, run.stderr).toBe(0)
    const built = existsSync(join(root, 'built'))
    rmSync(join(root, 'built'), { force: true })
    return { built, output: run.stdout }
  }

  it('builds when a UI source is newer than the build, and not otherwise', () => {
    file('dist/ui/panel/index.html', 10)
    expect(ensure().built).toBe(false)
    file('ui/src/components/mappings/RefPicker.vue', 1)
    const run = ensure()
    expect(run.built).toBe(true)
    expect(run.output).toContain('npm run build')
  })
})
