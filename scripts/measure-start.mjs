// `node scripts/measure-start.mjs [runs]`: how long the server takes from spawn to its first 200 on
// /readyz, and its resident memory then and after 100 health checks (all of it, and the part not
// backed by files: the Node binary's own mapped pages differ between builds of Node), for each way of running it —
// the sources through tsx, the build in dist/server (npm run build:server first; as npm start runs
// it, with source maps, and without), and Node's own
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
  ...(existsSync('dist/server/main.mjs')
    ? { build: ['dist/server/main.mjs'], 'build --enable-source-maps': ['--enable-source-maps', 'dist/server/main.mjs'] }
    : {}),
  ...(major >= 22
    ? {
        'node --experimental-transform-types': [
          '--experimental-transform-types',
          '--disable-warning=ExperimentalWarning',
          'server/main.ts',
        ],
      }
    : {}),
}

async function freePort() {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

/** Resident memory in MB: all of it, and the part not backed by files (heaps, not the mapped Node binary). */
const memory = (pid) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)[1])
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 }
}

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
      // Refused connections while the server starts count as not ready yet.
      const ready = await fetch(`${url}/readyz`).catch(() => null)
      if (ready?.ok) break
      await new Promise((r) => setTimeout(r, 10))
    }
    const readyMs = performance.now() - started
    const ready = memory(child.pid)
    for (let i = 0; i < 100; i++) await (await fetch(`${url}/healthz`)).arrayBuffer()
    return { readyMs, ready, serving: memory(child.pid) }
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
  const mb = (pick) => median(results.map(pick)).toFixed(0)
  console.log(
    `${name.padEnd(36)} ready in ${mb((r) => r.readyMs).padStart(5)} ms   RSS at ready ${mb((r) => r.ready.rss)} MB` +
      ` (${mb((r) => r.ready.anon)} MB not file-backed), after 100 requests ${mb((r) => r.serving.rss)} MB (${mb((r) => r.serving.anon)} MB)`,
  )
}
