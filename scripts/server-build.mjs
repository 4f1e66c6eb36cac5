// Whether the server build in dist/server can be run as it is: what `npm start` checks before it
// starts the server. The build is judged by its BUILT mark (written last by build-server.mjs)
// against the newest file of what it is built from (server/, shared/, package.json).
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { newestChange } from './ui-build.mjs'

export const SERVER_SOURCES = ['server', 'shared', 'package.json']
export const SERVER_ENTRY = 'dist/server/main.mjs'

/** `ok`, or why the server must be built again: `missing` or `stale`. */
export function serverBuildState({ root = '.' } = {}) {
  const mark = join(root, 'dist/server/BUILT')
  if (!existsSync(mark) || !existsSync(join(root, SERVER_ENTRY))) return 'missing'
  const changedAt = Math.max(...SERVER_SOURCES.map((source) => newestChange(join(root, source))))
  return changedAt > statSync(mark).mtimeMs ? 'stale' : 'ok'
}
