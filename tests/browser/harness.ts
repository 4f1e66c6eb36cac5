/**
 * Runs the real thing for browser tests: the production UI build with the local App Station page,
 * the server (`npx tsx server/main.ts`) with KIT_DEV_HOST=1 on a free port, its database and
 * generated development secrets in a fresh temporary directory, the Kit stand-in behind it, and
 * headless Chromium.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { startKitStandin, type KitStandin, type StandinOptions } from '../kit-standin/server.ts'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../helpers/chromium.ts'
import { freePort } from '../helpers/server-process.ts'

export const chromiumAvailable = existsSync(CHROMIUM_PATH)

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface Stack {
  origin: string
  kit: KitStandin
  browser: Browser
  /** What the server printed, for failure messages. */
  output: () => string
  stop: () => Promise<void>
}

async function waitUntilReady(origin: string, server: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`The server exited with ${server.exitCode}:\n${output()}`)
    const ready = await fetch(`${origin}/healthz`).then(
      (response) => response.ok,
      () => false,
    )
    if (ready) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`The server did not become ready:\n${output()}`)
}

function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.pid === undefined) return Promise.resolve()
  return new Promise((resolve) => {
    const force = setTimeout(() => process.kill(-server.pid!, 'SIGKILL'), 5_000)
    server.once('exit', () => {
      clearTimeout(force)
      resolve()
    })
    process.kill(-server.pid!, 'SIGTERM')
  })
}

export interface StackOptions {
  /** More settings for the server (e.g. a smaller Kit budget); a function gets the server's origin. */
  env?: Record<string, string> | ((origin: string) => Record<string, string>)
  /** More for the Kit stand-in (a Kit app for Connect with Kit, say). */
  kit?: StandinOptions
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  // The UI was built once for the whole run (tests/browser/global-setup.ts).
  const kit = await startKitStandin({ apiKeys: ['kit_test_key'], ...options.kit })
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  // The dev host runs only with generated secrets: none in the environment, secrets.json beside the database.
  const { NODE_ENV: _ignored, APPSTATION_JWT_SECRET: _jwt, EVENTS_SECRET: _events, ENCRYPTION_KEY: _key, ...env } = process.env
  const dataDir = mkdtempSync(join(tmpdir(), 'kit-browser-'))
  let log = ''
  const server = spawn('npx', ['tsx', 'server/main.ts'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...env,
      HOST: '127.0.0.1',
      PORT: String(port),
      KIT_DEV_HOST: '1',
      DATABASE_PATH: join(dataDir, 'kit.sqlite'),
      KIT_API_URL: kit.url,
      LOG_LEVEL: 'warn',
      // One test file reloads the panel a dozen times a minute as the same user, far more than a
      // person does: give it room, so a test never meets the per-user limit meant for people
      // (the limit itself is tested in tests/rate-limit.test.ts).
      API_RATE_LIMIT: '600',
      ...(typeof options.env === 'function' ? options.env(origin) : options.env),
    },
  })
  server.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()))
  server.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()))
  const output = () => log.slice(-4000)

  let browser: Browser | undefined
  try {
    await waitUntilReady(origin, server, output)
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
    })
  } catch (error) {
    await stopServer(server)
    await kit.close()
    rmSync(dataDir, { recursive: true, force: true })
    throw error
  }
  const launched = browser
  return {
    origin,
    kit,
    browser: launched,
    output,
    stop: async () => {
      await launched.close()
      await stopServer(server)
      await kit.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** Retries `check` until it passes or `timeoutMs` runs out, then throws its last error. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000, everyMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  }
}
