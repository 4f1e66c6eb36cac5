// Part of npm start: build the UI when the build is missing or older than its sources — the panel
// always, the local App Station page too when KIT_DEV_HOST=1. A build from before the two were
// split (dist/ui/dev) is rebuilt so no development page lingers among the panel's assets.
import { spawnSync } from 'node:child_process'
import { uiBuildState } from './ui-build.mjs'

const devHost = process.env.KIT_DEV_HOST === '1'
const state = uiBuildState({ devHost })

const why = {
  missing: 'No UI build found',
  old_layout: 'The UI build is from an older layout',
  stale: 'The UI sources changed since the last build',
}

if (state !== 'ok') {
  const script = devHost ? 'build:dev' : 'build'
  console.log(`${why[state]}: building it first (npm run ${script})…`)
  const result = spawnSync('npm', ['run', script], { stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
