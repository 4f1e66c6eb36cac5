// `npm run build:server [dist/<folder>]`: the server as plain JavaScript in dist/server (or the
// folder given, which must also sit in dist/), what production runs
// (`node dist/server/main.mjs`, or `npm start`, which builds it first when it is missing or stale).
// One module per entry plus shared chunks; packages stay in node_modules; modules loaded on demand
// (PostgreSQL, the event bus) stay separate chunks, loaded only when configured. dist/server sits
// two folders deep like server/<area>/, so the paths the server finds beside itself (migrations/,
// dist/ui, dist/dev) are the same from the build as from the sources.
import { rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { build } from 'esbuild'

const out = process.argv[2] ?? 'dist/server'
if (dirname(out) !== 'dist') {
  console.error(`the server build goes into a folder of dist/ (like dist/server), not ${out}`)
  process.exit(1)
}

rmSync(out, { recursive: true, force: true })
await build({
  entryPoints: { main: 'server/main.ts' },
  outdir: out,
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
writeFileSync(`${out}/BUILT`, `${new Date().toISOString()}\n`)
