// Part of npm start: build the UI when no build exists yet.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

if (!existsSync('dist/ui/panel/index.html')) {
  console.log('No UI build found: building it first (npm run build)…')
  const result = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
