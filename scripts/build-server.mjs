// `npm run build:server`: the server as plain JavaScript in dist/server, what production runs
// (`node dist/server/main.mjs`, or `npm start`, which builds it first when it is missing or stale).
// One module per entry plus shared chunks; packages stay in node_modules; modules loaded on demand
// (PostgreSQL, the event bus) stay separate chunks, loaded only when configured. dist/server sits
// two folders deep like server/<area>/, so the paths the server finds beside itself (migrations/,
// dist/ui, dist/dev) are the same from the build as from the sources.
import { rmSync, writeFileSync } from 'node:fs'
import { build } from 'esbuild'

export const SERVER_OUT = 'dist/server'

rmSync(SERVER_OUT, { recursive: true, force: true })
await build({
  entryPoints: { main: 'server/main.ts' },
  outdir: SERVER_OUT,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
})
// Written last: its time marks a complete build (scripts/server-build.mjs compares it with the sources).
writeFileSync(`${SERVER_OUT}/BUILT`, `${new Date().toISOString()}\n`)
