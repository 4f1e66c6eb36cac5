/**
 * How production runs the server: built to plain JavaScript (npm run build:server), started by
 * Node alone, and installed without the build tools. The build goes into a folder of dist/ of its
 * own here, so it never meets the one npm start uses.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { goodSecrets, metricsToken, tempDb } from './helpers/config.ts'
import { createTestDatabase, postgresAvailable } from './helpers/postgres.ts'
import { freePort } from './helpers/server-process.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = `dist/server-test-${randomBytes(4).toString('hex')}`

/** Starts the build with Node alone (no loader, no TypeScript) and waits for /readyz. */
async function startBuilt(env: Record<string, string>) {
  const port = await freePort()
  const child = spawn(process.execPath, [`${OUT}/main.mjs`], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...goodSecrets(),
      METRICS_TOKEN: metricsToken(),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  let ready: Response | null = null
  while (!ready) {
    if (child.exitCode !== null) throw new Error(`the built server exited: ${out}`)
    if (Date.now() > deadline) throw new Error(`the built server did not answer /readyz: ${out}`)
    ready = await fetch(`${url}/readyz`).catch(() => null)
    if (!ready) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    ready,
    url,
    async stop() {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      return (await exited)[0] as number | null
    },
  }
}

describe('the server built to plain JavaScript', () => {
  beforeAll(() => {
    const built = spawnSync(process.execPath, ['scripts/build-server.mjs', OUT], { cwd: ROOT, encoding: 'utf8' })
    expect(built.status, built.stderr).toBe(0)
  }, 120_000)
  afterAll(() => rmSync(`${ROOT}/${OUT}`, { recursive: true, force: true }))

  it('loads no TypeScript: its modules import JavaScript and packages only', () => {
    const main = readFileSync(`${ROOT}/${OUT}/main.mjs`, 'utf8')
    expect(main).not.toMatch(/from\s+["'][^"']+\.ts["']|import\(["'][^"']+\.ts["']\)/)
    expect(existsSync(`${ROOT}/${OUT}/BUILT`)).toBe(true)
  })

  it('starts in production on SQLite, applies its migrations and shuts down cleanly', async () => {
    const server = await startBuilt({ DATABASE_PATH: tempDb() })
    expect(server.ready.status).toBe(200)
    expect(await server.ready.json()).toMatchObject({ status: 'ready' })
    expect(await server.stop()).toBe(0)
  }, 60_000)

  it('starts in production on PostgreSQL and applies its migrations there', async () => {
    if (!(await postgresAvailable())) return
    const db = await createTestDatabase('kitbuild')
    try {
      const server = await startBuilt({ DATABASE_URL: db.url })
      expect(server.ready.status).toBe(200)
      expect(await server.ready.json()).toMatchObject({ status: 'ready' })
      expect(await server.stop()).toBe(0)
    } finally {
      await db.drop()
    }
  }, 60_000)
})

describe('the package', () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as {
    dependencies: Record<string, string>
    devDependencies: Record<string, string>
  }

  it('needs no build tool at run time: the bundler, the UI framework and the TypeScript loader are for building only', () => {
    for (const tool of ['vite', '@vitejs/plugin-vue', 'tsx', 'esbuild', 'vue', 'pinia', 'typescript']) {
      expect(pkg.dependencies, tool).not.toHaveProperty(tool)
      expect(pkg.devDependencies, tool).toHaveProperty(tool)
    }
  })

  it('talks to NATS through the current client line, transport and JetStream packages', () => {
    expect(pkg.dependencies).not.toHaveProperty('nats')
    expect(pkg.dependencies).toHaveProperty('@nats-io/transport-node')
    expect(pkg.dependencies).toHaveProperty('@nats-io/jetstream')
  })
})
