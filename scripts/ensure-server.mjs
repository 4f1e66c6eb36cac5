// Part of npm start (and start:cluster): build the server (dist/server) when the build is missing
// or older than its sources, so the server runs as plain JavaScript.
import { spawnSync } from 'node:child_process'
import { serverBuildState } from './server-build.mjs'

const why = { missing: 'No server build found', stale: 'The server sources changed since the last build' }

const state = serverBuildState()
if (state !== 'ok') {
  console.log(`${why[state]}: building it first (npm run build:server)…`)
  const result = spawnSync('npm', ['run', 'build:server'], { stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
