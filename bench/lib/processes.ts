/**
 * Child processes started by a benchmark or drill. Each is remembered by its own handle and
 * killed by pid when this process exits or is interrupted, so nothing outlives a run.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { ROOT } from './env.ts'

const children = new Set<ChildProcess>()
let hooked = false

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

function killAll(): void {
  for (const child of children) if (alive(child)) child.kill('SIGKILL')
}

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll()
      process.exit(130)
    })
  }
}

export interface Child {
  child: ChildProcess
  pid: number
  /** Everything it wrote to stdout and stderr, the last 20 000 characters. */
  output: () => string
  exited: Promise<number | null>
  /** Sends the signal and waits for the exit; immediate when it already exited. */
  kill: (signal: NodeJS.Signals) => Promise<void>
}

/** Starts `node --import tsx <script>` from the repository root. */
export function spawnTs(script: string, env: Record<string, string | undefined>, args: string[] = []): Child {
  const options: SpawnOptions = { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], options)
  if (child.pid === undefined) throw new Error(`could not start ${script}`)
  hookExit()
  children.add(child)
  let out = ''
  const collect = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-20_000)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = once(child, 'exit').then(([code]) => {
    children.delete(child)
    return code as number | null
  })
  return {
    child,
    pid: child.pid,
    output: () => out,
    exited,
    async kill(signal) {
      if (alive(child)) child.kill(signal)
      await exited
    },
  }
}

/** Resident set size of a process in KiB, from /proc/<pid>/status (VmRSS). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1])
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * CPU time of every process on this machine whose command is `command` (e.g. `postgres`: the
 * server and all its backends), in seconds; 0 when there is none, as when the server is remote.
 * A process that ends between two readings takes its time with it, so compare readings taken
 * while the same connections stay open.
 */
export function cpuSecondsOf(command: string): number {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== command) continue
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      total += (Number(fields[11]) + Number(fields[12])) / 100
    } catch {
      // Gone since the directory was read.
    }
  }
  return total
}
