/** Paths, ports, secrets and small timing helpers shared by the benchmarks and the drills. */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export { freePort } from '../../tests/helpers/server-process.ts'

const tempDirs: string[] = []

/**
 * A fresh directory under the system temp dir, removed when the process exits (databases of an
 * intake run reach tens of MB); BENCH_KEEP_DATA=1 keeps them for a look afterwards.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`))
  if (tempDirs.length === 0 && process.env.BENCH_KEEP_DATA !== '1') {
    process.on('exit', () => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })))
  }
  tempDirs.push(dir)
  return dir
}

/** Everything a server and its clients must agree on. */
export interface Secrets {
  jwtSecret: string
  /** The raw HMAC key, base64: what follows `whsec_`. */
  hmacKey: string
  encryptionKey: string
}

export function newSecrets(): Secrets {
  return {
    jwtSecret: randomBytes(48).toString('base64url'),
    hmacKey: randomBytes(32).toString('base64'),
    encryptionKey: randomBytes(32).toString('base64'),
  }
}

/** A positive integer from the environment, or the fallback. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`)
  return value
}

export const median = (values: number[]): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export const round = (value: number, digits = 2): number => Number(value.toFixed(digits))
