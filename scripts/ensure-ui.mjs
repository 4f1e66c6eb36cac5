// Part of npm start: build the UI when no build exists yet — the panel always, the local App
// Station page too when KIT_DEV_HOST=1. A build from before the two were split (dist/ui/dev) is
// rebuilt so no development page lingers among the panel's assets.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const devHost = process.env.KIT_DEV_HOST === '1'
const stale = existsSync('dist/ui/dev')
const missing = !existsSync('dist/ui/panel/index.html') || (devHost && !existsSync('dist/dev/index.html'))

if (stale || missing) {
  const script = devHost ? 'build:dev' : 'build'
  console.log(`No up-to-date UI build found: building it first (npm run ${script})…`)
  const result = spawnSync('npm', ['run', script], { stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
