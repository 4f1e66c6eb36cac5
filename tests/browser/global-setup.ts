/**
 * Builds the UI once, as shipped, before any test file starts: the browser files share one build,
 * and no server-side test that reads dist/ ever meets a build half-written by a browser file.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export default function setup(): void {
  // The test runner sets NODE_ENV=test, which would give Vue's development build: build as shipped.
  execFileSync('npm', ['run', 'build:dev'], { cwd: ROOT, stdio: 'pipe', env: { ...process.env, NODE_ENV: 'production' } })
}
