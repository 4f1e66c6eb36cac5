// npm start: the local App Station on a fresh clone, the plain server otherwise.
// KIT_DEV_HOST defaults to 1 here unless NODE_ENV names production (an explicit KIT_DEV_HOST,
// 0 included, always wins); the server then refuses to start unless the dev host is safe (loopback,
// secrets it generated itself). Production is decided by the same rule as the server's
// configuration. Builds the UI and the server first when either is missing or older than its
// sources, then runs the built server (plain JavaScript, dist/server) in this terminal.
import { spawn, spawnSync } from 'node:child_process'
import { isProduction } from '../server/lib/environment.mjs'
import { SERVER_ENTRY } from './server-build.mjs'

const env = { ...process.env }
const production = isProduction(env.NODE_ENV)
if (env.KIT_DEV_HOST === undefined && !production) env.KIT_DEV_HOST = '1'

// Node 20 still runs the server, but it gets no more fixes.
if (Number(process.versions.node.split('.')[0]) < 22) {
  console.warn(`Node ${process.versions.node} reached its end of life on 2026-04-30: run the server on Node 22 or 24 (LTS).`)
}

for (const script of ['scripts/ensure-ui.mjs', 'scripts/ensure-server.mjs']) {
  const built = spawnSync(process.execPath, [script], { stdio: 'inherit', env })
  if (built.status !== 0) process.exit(built.status ?? 1)
}

const server = spawn(process.execPath, ['--enable-source-maps', SERVER_ENTRY], { stdio: 'inherit', env })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.kill(signal))
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
