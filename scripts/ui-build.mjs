// Whether the UI build in dist/ can be served as it is: what `npm start` (scripts/ensure-ui.mjs)
// checks before it starts the server. The build is judged by its index pages' times against the
// newest file of what it is built from (ui/, shared/, the Vite configs).
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** What the UI is built from, relative to the project root. */
export const UI_SOURCES = ['ui', 'shared', 'vite.config.ts', 'vite.dev.config.ts']

/** The newest modification time (ms) of a file or of any file under a folder; 0 when absent. */
export function newestChange(path) {
  if (!existsSync(path)) return 0
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  let newest = 0
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue
    newest = Math.max(newest, newestChange(join(path, entry.name)))
  }
  return newest
}

/**
 * The state of the build under `root`: `ok`, or why it must be built again — `missing` (no build,
 * or no local App Station page when `devHost` needs one), `old_layout` (a build from before the
 * panel and the page were split left dist/ui/dev behind), `stale` (a source is newer).
 */
export function uiBuildState({ root = '.', devHost = false } = {}) {
  const pages = [join(root, 'dist/ui/panel/index.html'), ...(devHost ? [join(root, 'dist/dev/index.html')] : [])]
  if (existsSync(join(root, 'dist/ui/dev'))) return 'old_layout'
  if (!pages.every((page) => existsSync(page))) return 'missing'
  const builtAt = Math.min(...pages.map((page) => statSync(page).mtimeMs))
  const changedAt = Math.max(...UI_SOURCES.map((source) => newestChange(join(root, source))))
  return changedAt > builtAt ? 'stale' : 'ok'
}
