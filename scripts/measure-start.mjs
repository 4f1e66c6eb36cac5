// `node scripts/measure-start.mjs [runs]`: how long the server takes from spawn to its first 200 on
// /readyz, and its resident memory then and after 100 health checks, for each way of running it —
// the sources through tsx, the build in dist/server (npm run build:server first), and Node's own
// type transform where this Node has one. Production settings, a fresh SQLite file per run; the
// median of the runs is printed. Set NODE_BIN to measure another Node binary.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const runs = Number(process.argv[2] ?? 5)
const node = process.env.NODE_BIN || process.execPath
const version = await new Promise((resolve) => {
  const child = spawn(node, ['-v'])
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.on('exit', () => resolve(out.trim()))
})
const major = Number(version.slice(1).split('.')[0])

const modes = {
  tsx: ['--import', 'tsx', 'server/main.ts'],
  ...(existsSync('dist/server/main.mjs') ? { build: ['dist/server/main.mjs'] } : {}),
  ...(major >= 22 ? { 'node --experimental-transform-types': ['--experimental-transform-types', '--disable-warning=ExperimentalWarning', 'server/main.ts'] } : {}),
}

async function freePort() {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024

async function once_(args) {
  const dir = mkdtempSync(join(tmpdir(), 'kit-start-'))
  const port = await freePort()
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    DATABASE_PATH: join(dir, 'kit.db'),
    APPSTATION_JWT_SECRET: randomBytes(32).toString('hex'),
    EVENTS_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    METRICS_TOKEN: randomBytes(24).toString('hex'),
  }
  const started = performance.now()
  const child = spawn(node, args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  const url = `http://127.0.0.1:${port}`
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`exited early: ${err}`)
      try {
        if ((await fetch(`${url}/readyz`)).ok) break
      } catch {}
      await new Promise((r) => setTimeout(r, 10))
    }
    const readyMs = performance.now() - started
    const readyRss = rssMb(child.pid)
    for (let i = 0; i < 100; i++) await (await fetch(`${url}/healthz`)).arrayBuffer()
    return { readyMs, readyRss, servingRss: rssMb(child.pid) }
  } finally {
    child.kill('SIGTERM')
    if (child.exitCode === null) await once(child, 'exit')
    rmSync(dir, { recursive: true, force: true })
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`Node ${version}, ${runs} runs each (median)`)
for (const [name, args] of Object.entries(modes)) {
  const results = []
  for (let i = 0; i < runs; i++) results.push(await once_(args))
  const ready = median(results.map((r) => r.readyMs))
  const rss = median(results.map((r) => r.readyRss))
  const serving = median(results.map((r) => r.servingRss))
  console.log(`${name.padEnd(36)} ready in ${ready.toFixed(0).padStart(5)} ms   RSS ${rss.toFixed(0)} MB at ready, ${serving.toFixed(0)} MB after 100 requests`)
}
