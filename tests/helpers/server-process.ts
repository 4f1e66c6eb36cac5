/** The real server as a child process, for tests that need to crash and restart it. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  server.close()
  await once(server, 'close')
  return port
}

export interface ServerProcess {
  child: ChildProcess
  url: string
  output: () => string
  kill(signal: NodeJS.Signals): Promise<number | null>
}

/** The operators' token the production servers started here require (METRICS_TOKEN). */
export const METRICS_TOKEN = 'test-metrics-token-0123456789'

export async function startServer(env: Record<string, string>, port: number): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', METRICS_TOKEN, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early: ${out}`)
    try {
      if ((await fetch(`${url}/readyz`)).ok) break
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`server did not become ready: ${String(err)} ${out}`, { cause: err })
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    child,
    url,
    output: () => out,
    async kill(signal) {
      if (child.exitCode !== null) return child.exitCode
      const exited = once(child, 'exit')
      child.kill(signal)
      const [code] = (await exited) as [number | null]
      return code
    },
  }
}
