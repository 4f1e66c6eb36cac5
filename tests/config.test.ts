import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../server/config.ts'
import { isProduction } from '../server/lib/environment.mjs'
import { goodSecrets, metricsToken, problemsOf, productionEnv, tempDb } from './helpers/config.ts'

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
    expect(config.sessionMaxLifetimeS).toBe(600)
    expect(config.apiRateLimit).toBe(120)
    expect(config.kitCheckRateLimit).toBe(10)
    expect(config.requestTimeoutMs).toBe(30000)
    expect(config.connectionTimeoutMs).toBe(120000)
    expect(config.keepAliveTimeoutMs).toBe(10000)
    expect(config.retentionDays).toBe(30)
  })

  it('reads SESSION_MAX_LIFETIME_S and refuses one that is not a positive integer', () => {
    expect(loadConfig({ DATABASE_PATH: tempDb(), SESSION_MAX_LIFETIME_S: '300' }).config.sessionMaxLifetimeS).toBe(300)
    expect(problemsOf({ DATABASE_PATH: tempDb(), SESSION_MAX_LIFETIME_S: 'forever' }).join(' ')).toMatch(
      /SESSION_MAX_LIFETIME_S must be an integer/,
    )
  })

  it('reads the HTTP timeouts and refuses ones too short to be meant', () => {
    const { config } = loadConfig({
      DATABASE_PATH: tempDb(),
      HTTP_REQUEST_TIMEOUT_MS: '5000',
      HTTP_IDLE_TIMEOUT_MS: '60000',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '2000',
    })
    expect([config.requestTimeoutMs, config.connectionTimeoutMs, config.keepAliveTimeoutMs]).toEqual([5000, 60000, 2000])
    const problems = problemsOf({ DATABASE_PATH: tempDb(), HTTP_REQUEST_TIMEOUT_MS: '0', HTTP_IDLE_TIMEOUT_MS: 'soon' })
    expect(problems).toEqual(['HTTP_REQUEST_TIMEOUT_MS must be an integer ≥ 100', 'HTTP_IDLE_TIMEOUT_MS must be an integer ≥ 100'])
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
    expect(second.config.encryptionKeys[0].key.equals(first.config.encryptionKeys[0].key)).toBe(true)
    expect(second.notes.join(' ')).not.toMatch(/generated/)
    expect(JSON.parse(readFileSync(file, 'utf8')).ENCRYPTION_KEY).toBe(first.config.encryptionKeys[0].key.toString('base64'))
  })

  it("refuses to start in production and names every missing secret and the operators' token", () => {
    const problems = problemsOf({ NODE_ENV: 'production', DATABASE_PATH: tempDb() })
    expect(problems).toEqual([
      'APPSTATION_JWT_SECRET is required in production',
      'EVENTS_SECRET is required in production',
      'ENCRYPTION_KEY is required in production',
      expect.stringMatching(/^METRICS_TOKEN is required in production/),
    ])
  })

  it('names malformed secrets', () => {
    const problems = problemsOf({
      NODE_ENV: 'production',
      METRICS_TOKEN: metricsToken(),
      APPSTATION_JWT_SECRET: 'short',
      EVENTS_SECRET: 'not-a-webhook-secret',
      ENCRYPTION_KEY: randomBytes(16).toString('base64'),
    })
    expect(problems).toHaveLength(3)
    expect(problems[0]).toMatch(/APPSTATION_JWT_SECRET must be at least 32 bytes/)
    expect(problems[1]).toMatch(/EVENTS_SECRET/)
    expect(problems[2]).toMatch(/ENCRYPTION_KEY must be one or more space-separated keys, each base64 of exactly 32 bytes/)
  })

  it('starts in production with well-formed secrets, including several events secrets for rotation', () => {
    const secrets = goodSecrets()
    const next = `whsec_${randomBytes(24).toString('base64')}`
    const { config } = loadConfig({
      NODE_ENV: 'production',
      METRICS_TOKEN: metricsToken(),
      ...secrets,
      EVENTS_SECRET: `${secrets.EVENTS_SECRET} ${next}`,
    })
    expect(config.production).toBe(true)
    expect(config.eventsSecrets).toHaveLength(2)
    expect(config.encryptionKeys).toHaveLength(1)
    expect(config.encryptionKeys[0].key).toHaveLength(32)
  })

  it('reads several encryption keys for rotation, newest first, with or without key ids', () => {
    const [a, b, c] = [randomBytes(32), randomBytes(32), randomBytes(32)]
    const { config } = loadConfig({
      ...goodSecrets(),
      ENCRYPTION_KEY: `2026-12:${a.toString('base64')}  ${b.toString('base64')} old:${c.toString('base64')}`,
    })
    expect(config.encryptionKeys.map((k) => k.id)).toEqual(['2026-12', expect.stringMatching(/^k[0-9a-f]{10}$/), 'old'])
    expect(config.encryptionKeys.map((k) => k.key.toString('hex'))).toEqual([a, b, c].map((k) => k.toString('hex')))
    const again = loadConfig({ ...goodSecrets(), ENCRYPTION_KEY: b.toString('base64') })
    expect(again.config.encryptionKeys[0].id).toBe(config.encryptionKeys[1]?.id)
  })

  it('refuses encryption keys with a repeated or malformed key id, or a short key', () => {
    const key = randomBytes(32).toString('base64')
    for (const ENCRYPTION_KEY of [
      `a:${key} a:${randomBytes(32).toString('base64')}`,
      `bad id!:${key}`,
      `:${key}`,
      `a:${randomBytes(16).toString('base64')}`,
    ]) {
      expect(problemsOf({ ...goodSecrets(), ENCRYPTION_KEY }).join(' '), ENCRYPTION_KEY).toMatch(/ENCRYPTION_KEY must be one or more/)
    }
  })

  it('refuses malformed numbers and origins', () => {
    const problems = problemsOf({ ...goodSecrets(), KIT_RATE_LIMIT: 'lots', APPSTATION_ORIGIN: 'https://a.example/path' })
    expect(problems.join(' ')).toMatch(/APPSTATION_ORIGIN/)
    expect(problems.join(' ')).toMatch(/KIT_RATE_LIMIT/)
  })
})

describe('production', () => {
  it('is NODE_ENV production or prod, in any case, for the configuration as for npm start', () => {
    for (const NODE_ENV of ['production', 'Production', 'PROD', 'prod', ' prod ']) {
      expect(isProduction(NODE_ENV), NODE_ENV).toBe(true)
      expect(loadConfig({ ...productionEnv(), NODE_ENV }).config.production, NODE_ENV).toBe(true)
    }
    for (const NODE_ENV of ['', 'development', 'test', 'preprod', 'production-like', 'staging']) {
      expect(isProduction(NODE_ENV), NODE_ENV).toBe(false)
      expect(loadConfig({ DATABASE_PATH: tempDb(), NODE_ENV }).config.production, NODE_ENV).toBe(false)
    }
  })
})

describe('settings API rate limits', () => {
  it('reads both limits and refuses ones that are not positive integers', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb(), API_RATE_LIMIT: '600', KIT_CHECK_RATE_LIMIT: '3' })
    expect([config.apiRateLimit, config.kitCheckRateLimit]).toEqual([600, 3])
    expect(problemsOf({ DATABASE_PATH: tempDb(), API_RATE_LIMIT: '0', KIT_CHECK_RATE_LIMIT: 'many' })).toEqual([
      'API_RATE_LIMIT must be an integer ≥ 1',
      'KIT_CHECK_RATE_LIMIT must be an integer ≥ 1',
    ])
  })

  it('allows 60 failed session tokens and 60000 events a minute per source by default, and reads both', () => {
    const defaults = loadConfig({ DATABASE_PATH: tempDb() }).config
    expect([defaults.sessionFailureLimit, defaults.eventsRateLimit]).toEqual([60, 60_000])
    const { config } = loadConfig({ DATABASE_PATH: tempDb(), SESSION_FAILURE_LIMIT: '5', EVENTS_RATE_LIMIT: '1000000' })
    expect([config.sessionFailureLimit, config.eventsRateLimit]).toEqual([5, 1_000_000])
    expect(problemsOf({ DATABASE_PATH: tempDb(), SESSION_FAILURE_LIMIT: '-1', EVENTS_RATE_LIMIT: '1.5' })).toEqual([
      'SESSION_FAILURE_LIMIT must be an integer ≥ 1',
      'EVENTS_RATE_LIMIT must be an integer ≥ 1',
    ])
  })
})

describe('member-file upload pace', () => {
  it('reads SYNC_UPLOAD_MIN_BYTES, SYNC_UPLOAD_WINDOW_MS and SYNC_UPLOAD_STALL_MS, and refuses a stall shorter than the window', () => {
    const { config } = loadConfig({
      DATABASE_PATH: tempDb(),
      SYNC_UPLOAD_MIN_BYTES: '1024',
      SYNC_UPLOAD_WINDOW_MS: '500',
      SYNC_UPLOAD_STALL_MS: '1500',
    })
    expect(config.syncUpload).toEqual({ minBytes: 1024, windowMs: 500, stallMs: 1500 })
    expect(problemsOf({ DATABASE_PATH: tempDb(), SYNC_UPLOAD_WINDOW_MS: '20000', SYNC_UPLOAD_STALL_MS: '10000' })).toEqual([
      'SYNC_UPLOAD_STALL_MS must be at least SYNC_UPLOAD_WINDOW_MS',
    ])
    expect(problemsOf({ DATABASE_PATH: tempDb(), SYNC_UPLOAD_MIN_BYTES: '0' })).toEqual(['SYNC_UPLOAD_MIN_BYTES must be an integer ≥ 1'])
  })
})

describe('METRICS_TOKEN', () => {
  it('is optional in development and required in production, whichever way NODE_ENV names it', () => {
    expect(loadConfig({ DATABASE_PATH: tempDb() }).config.metricsToken).toBeNull()
    for (const NODE_ENV of ['production', 'Production', 'prod', 'PROD', ' prod ']) {
      const { METRICS_TOKEN: _token, ...withoutToken } = productionEnv()
      const problems = problemsOf({ ...withoutToken, NODE_ENV })
      expect(problems, NODE_ENV).toHaveLength(1)
      expect(problems[0], NODE_ENV).toMatch(
        /^METRICS_TOKEN is required in production: \/metrics and \/docs\/openapi.json answer only with "Authorization: Bearer <METRICS_TOKEN>"/,
      )
    }
  })

  it('is read when set and refused when too short to be a secret', () => {
    const token = randomBytes(24).toString('hex')
    expect(loadConfig({ ...productionEnv(), METRICS_TOKEN: token }).config.metricsToken).toBe(token)
    expect(problemsOf({ ...productionEnv(), METRICS_TOKEN: 'short' })).toEqual([
      'METRICS_TOKEN must be at least 16 printable characters without spaces, for example 32 random bytes written as hex',
    ])
  })
})

describe('KIT_API_URL', () => {
  const production = (url: string) => problemsOf({ ...productionEnv(), KIT_API_URL: url })

  it('refuses plain http to another host in production, naming the variable', () => {
    for (const url of ['http://api.kit.com', 'http://10.0.0.5:8790', 'http://127.example.com', 'http://localhost.example.com']) {
      const problems = production(url)
      expect(problems, url).toHaveLength(1)
      expect(problems[0]).toMatch(/^KIT_API_URL must be an https: URL in production/)
    }
  })

  it('allows https, and plain http to loopback hosts, in production', () => {
    for (const url of [
      'https://api.kit.com',
      'http://127.0.0.1:8790',
      'http://127.1.2.3:8790',
      'http://[::1]:8790',
      'http://localhost:8790',
    ]) {
      expect(production(url), url).toEqual([])
    }
  })

  it('allows plain http to any host in development', () => {
    expect(problemsOf({ DATABASE_PATH: tempDb(), KIT_API_URL: 'http://kit.internal:8790' })).toEqual([])
  })

  it('refuses something that is not an http(s) URL', () => {
    expect(problemsOf({ DATABASE_PATH: tempDb(), KIT_API_URL: 'ftp://api.kit.com' })).toEqual([
      'KIT_API_URL must be an http(s) URL such as https://api.kit.com',
    ])
    expect(problemsOf({ DATABASE_PATH: tempDb(), KIT_API_URL: 'https://' })).toEqual([
      'KIT_API_URL must be an http(s) URL such as https://api.kit.com',
    ])
  })
})

describe('Connect with Kit (KIT_OAUTH_*)', () => {
  const client = { KIT_OAUTH_CLIENT_ID: 'kit_app_1', KIT_OAUTH_CLIENT_SECRET: 'kit-app-secret-value-123' }

  it('is off by default, with the OAuth budget at Kit’s 600 per 60 s', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb() })
    expect(config.kitOAuth).toBeNull()
    expect([config.kitOAuthRateLimit, config.kitOAuthRateWindowMs]).toEqual([600, 60_000])
  })

  it('is on with the client and PUBLIC_URL, the redirect under PUBLIC_URL', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb(), ...client, PUBLIC_URL: 'https://kit-plugin.example/' })
    expect(config.kitOAuth).toEqual({
      clientId: 'kit_app_1',
      clientSecret: 'kit-app-secret-value-123',
      redirectUri: 'https://kit-plugin.example/oauth/kit/callback',
    })
  })

  it('stays off without PUBLIC_URL, and says so at start', () => {
    const { config, notes } = loadConfig({ DATABASE_PATH: tempDb(), ...client })
    expect(config.kitOAuth).toBeNull()
    expect(notes.join(' ')).toMatch(/PUBLIC_URL is not.*Connect with Kit is off/)
  })

  it('refuses one client setting without the other, never quoting the secret', () => {
    const problems = problemsOf({ ...goodSecrets(), KIT_OAUTH_CLIENT_SECRET: client.KIT_OAUTH_CLIENT_SECRET })
    expect(problems).toEqual([expect.stringMatching(/^KIT_OAUTH_CLIENT_ID must be set too/)])
    expect(problemsOf({ ...goodSecrets(), KIT_OAUTH_CLIENT_ID: 'kit_app_1' })).toEqual([
      expect.stringMatching(/^KIT_OAUTH_CLIENT_SECRET must be set too/),
    ])
    const bad = problemsOf({ ...goodSecrets(), ...client, KIT_OAUTH_CLIENT_SECRET: 'has a space in it' })
    expect(bad.join(' ')).toMatch(/KIT_OAUTH_CLIENT_SECRET must be/)
    expect(bad.join(' ')).not.toContain('has a space')
  })

  it('reads the OAuth budget', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb(), KIT_OAUTH_RATE_LIMIT: '300', KIT_OAUTH_RATE_WINDOW_MS: '30000' })
    expect([config.kitOAuthRateLimit, config.kitOAuthRateWindowMs]).toEqual([300, 30_000])
    expect(problemsOf({ ...goodSecrets(), KIT_OAUTH_RATE_LIMIT: '0' }).join(' ')).toMatch(/KIT_OAUTH_RATE_LIMIT must be an integer ≥ 1/)
  })

  it('is allowed together with the local App Station', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb(), KIT_DEV_HOST: '1', ...client, PUBLIC_URL: 'http://127.0.0.1:8787' })
    expect(config.devHost).toBe(true)
    expect(config.kitOAuth?.redirectUri).toBe('http://127.0.0.1:8787/oauth/kit/callback')
  })
})
