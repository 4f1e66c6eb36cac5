import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../server/config.ts'

const tempDb = () => join(mkdtempSync(join(tmpdir(), 'kit-config-')), 'kit.sqlite')
const goodSecrets = () => ({
  APPSTATION_JWT_SECRET: randomBytes(32).toString('hex'),
  EVENTS_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
})

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('configuration', () => {
  it('uses the contract defaults in development', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb() })
    expect(config.port).toBe(8787)
    expect(config.host).toBe('127.0.0.1')
    expect(config.issuer).toBe('http://127.0.0.1:8787')
    expect(config.origin).toBe(config.issuer)
    expect(config.pluginId).toBe('kit')
    expect(config.kitApiUrl).toBe('https://api.kit.com')
    expect(config.kitRateLimit).toBe(120)
    expect(config.kitRateWindowMs).toBe(60000)
    expect(config.retentionDays).toBe(30)
  })

  it('reads RETENTION_DAYS and refuses anything but a whole number of days from 1', () => {
    expect(loadConfig({ ...goodSecrets(), RETENTION_DAYS: '7' }).config.retentionDays).toBe(7)
    for (const value of ['0', '-3', '1.5', 'forever']) {
      expect(problemsOf({ ...goodSecrets(), RETENTION_DAYS: value })).toEqual(['RETENTION_DAYS must be an integer ≥ 1'])
    }
  })

  it('generates development secrets once, beside the database, readable only by the owner', () => {
    const db = tempDb()
    const first = loadConfig({ DATABASE_PATH: db })
    expect(first.notes.join(' ')).toMatch(/generated APPSTATION_JWT_SECRET, EVENTS_SECRET, ENCRYPTION_KEY/)
    const file = join(db, '..', 'secrets.json')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const second = loadConfig({ DATABASE_PATH: db })
    expect(second.config.jwtSecret).toBe(first.config.jwtSecret)
    expect(second.config.encryptionKey.equals(first.config.encryptionKey)).toBe(true)
    expect(second.notes.join(' ')).not.toMatch(/generated/)
    expect(JSON.parse(readFileSync(file, 'utf8')).ENCRYPTION_KEY).toBe(first.config.encryptionKey.toString('base64'))
  })

  it('refuses to start in production and names every missing secret', () => {
    const problems = problemsOf({ NODE_ENV: 'production', DATABASE_PATH: tempDb() })
    expect(problems).toEqual([
      'APPSTATION_JWT_SECRET is required in production',
      'EVENTS_SECRET is required in production',
      'ENCRYPTION_KEY is required in production',
    ])
  })

  it('names malformed secrets', () => {
    const problems = problemsOf({
      NODE_ENV: 'production',
      APPSTATION_JWT_SECRET: 'short',
      EVENTS_SECRET: 'not-a-webhook-secret',
      ENCRYPTION_KEY: randomBytes(16).toString('base64'),
    })
    expect(problems).toHaveLength(3)
    expect(problems[0]).toMatch(/APPSTATION_JWT_SECRET must be at least 32 bytes/)
    expect(problems[1]).toMatch(/EVENTS_SECRET/)
    expect(problems[2]).toMatch(/ENCRYPTION_KEY must be base64 of exactly 32 bytes/)
  })

  it('starts in production with well-formed secrets, including several events secrets for rotation', () => {
    const secrets = goodSecrets()
    const next = `whsec_${randomBytes(24).toString('base64')}`
    const { config } = loadConfig({ NODE_ENV: 'production', ...secrets, EVENTS_SECRET: `${secrets.EVENTS_SECRET} ${next}` })
    expect(config.production).toBe(true)
    expect(config.eventsSecrets).toHaveLength(2)
    expect(config.encryptionKey).toHaveLength(32)
  })

  it('refuses malformed numbers and origins', () => {
    const problems = problemsOf({ ...goodSecrets(), KIT_RATE_LIMIT: 'lots', APPSTATION_ORIGIN: 'https://a.example/path' })
    expect(problems.join(' ')).toMatch(/APPSTATION_ORIGIN/)
    expect(problems.join(' ')).toMatch(/KIT_RATE_LIMIT/)
  })
})
