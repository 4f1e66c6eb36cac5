/** The configuration of events to the platform: PLATFORM_EVENTS_URL and _SECRET together, PUBLIC_URL, KIT_POLL_INTERVAL_S. */
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../server/config.ts'
import { problemsOf, productionEnv, tempDb } from './helpers/config.ts'
import { newPlatformSecret } from './helpers/platform-receiver.ts'

describe('events to the platform', () => {
  it('are off without PLATFORM_EVENTS_URL and PLATFORM_EVENTS_SECRET, in development and in production', () => {
    expect(loadConfig({ DATABASE_PATH: tempDb() }).config.platformEvents).toBeNull()
    expect(loadConfig(productionEnv()).config.platformEvents).toBeNull()
  })

  it('are on with both, the secret kept as given for signing', () => {
    const secret = newPlatformSecret()
    const { config } = loadConfig({
      ...productionEnv(),
      PLATFORM_EVENTS_URL: 'https://appstation.example/kit-events',
      PLATFORM_EVENTS_SECRET: secret,
    })
    expect(config.platformEvents).toEqual({ url: 'https://appstation.example/kit-events', secret })
  })

  it('refuses to start with one but not the other, naming the one missing, in every mode', () => {
    for (const env of [{ DATABASE_PATH: tempDb() }, productionEnv()]) {
      expect(problemsOf({ ...env, PLATFORM_EVENTS_URL: 'https://appstation.example/kit-events' })).toEqual([
        expect.stringMatching(/^PLATFORM_EVENTS_SECRET must be set too/),
      ])
      expect(problemsOf({ ...env, PLATFORM_EVENTS_SECRET: newPlatformSecret() })).toEqual([
        expect.stringMatching(/^PLATFORM_EVENTS_URL must be set too/),
      ])
      // A malformed one alone is named for what it is, once.
      expect(problemsOf({ ...env, PLATFORM_EVENTS_URL: 'http://platform.test/e' })).toEqual([
        expect.stringMatching(/^PLATFORM_EVENTS_URL must be an https URL/),
      ])
    }
  })

  it('are sent over https, or plain http to a loopback host only', () => {
    const secret = newPlatformSecret()
    for (const url of ['http://127.0.0.1:9000/events', 'http://localhost/e', 'http://[::1]:8080/e', 'https://appstation.example/e']) {
      expect(problemsOf({ DATABASE_PATH: tempDb(), PLATFORM_EVENTS_URL: url, PLATFORM_EVENTS_SECRET: secret }), url).toEqual([])
    }
    for (const url of ['http://platform.test/e', 'ftp://127.0.0.1/e', 'platform.test']) {
      const problems = problemsOf({ DATABASE_PATH: tempDb(), PLATFORM_EVENTS_URL: url, PLATFORM_EVENTS_SECRET: secret })
      expect(problems, url).toEqual([expect.stringMatching(/^PLATFORM_EVENTS_URL must be an https URL/)])
      expect(problems[0]).not.toContain(url)
    }
  })

  it('are signed with a whsec_ secret only, which no refusal repeats', () => {
    for (const secret of ['not-a-secret', 'whsec_***', `whsec_${Buffer.from('short').toString('base64')}`]) {
      const problems = problemsOf({ DATABASE_PATH: tempDb(), PLATFORM_EVENTS_URL: 'https://a.example/e', PLATFORM_EVENTS_SECRET: secret })
      expect(problems).toEqual([expect.stringMatching(/^PLATFORM_EVENTS_SECRET must be one "whsec_<base64>" secret/)])
      expect(problems[0]).not.toContain(secret)
    }
  })
})

describe('PUBLIC_URL', () => {
  it('is an https origin, or plain http on a loopback host, in every mode', () => {
    for (const env of [{ DATABASE_PATH: tempDb() }, productionEnv()]) {
      expect(loadConfig({ ...env, PUBLIC_URL: 'https://kit-plugin.example/' }).config.publicUrl).toBe('https://kit-plugin.example')
      expect(loadConfig({ ...env, PUBLIC_URL: 'http://127.0.0.1:8787' }).config.publicUrl).toBe('http://127.0.0.1:8787')
      for (const url of ['http://kit-plugin.example', 'https://kit-plugin.example/path', 'kit-plugin.example']) {
        expect(problemsOf({ ...env, PUBLIC_URL: url }), url).toEqual([expect.stringMatching(/^PUBLIC_URL must be an https origin/)])
      }
    }
    expect(loadConfig({ DATABASE_PATH: tempDb() }).config.publicUrl).toBeNull()
  })
})

describe('KIT_POLL_INTERVAL_S', () => {
  it('is 300 seconds by default, and any whole number from 1', () => {
    expect(loadConfig({ DATABASE_PATH: tempDb() }).config.kitPollIntervalS).toBe(300)
    expect(loadConfig({ DATABASE_PATH: tempDb(), KIT_POLL_INTERVAL_S: '1' }).config.kitPollIntervalS).toBe(1)
    for (const value of ['0', '1.5', '-3']) {
      expect(problemsOf({ DATABASE_PATH: tempDb(), KIT_POLL_INTERVAL_S: value }), value).toEqual([
        'KIT_POLL_INTERVAL_S must be an integer ≥ 1',
      ])
    }
  })
})
