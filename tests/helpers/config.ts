/** Configuration from an environment, as the tests of `loadConfig` need it. */
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../server/config.ts'

/** A database path in a fresh directory, so development secrets are generated beside it. */
export const tempDb = () => join(mkdtempSync(join(tmpdir(), 'kit-config-')), 'kit.sqlite')

/** Well-formed values for the three secrets, as an operator would set them. */
export const goodSecrets = () => ({
  APPSTATION_JWT_SECRET: randomBytes(32).toString('hex'),
  EVENTS_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
})

/** An operators' token for /metrics, required in production. */
export const metricsToken = () => randomBytes(24).toString('hex')

/** What a production start needs: NODE_ENV, the three secrets and METRICS_TOKEN. */
export const productionEnv = () => ({ NODE_ENV: 'production', ...goodSecrets(), METRICS_TOKEN: metricsToken() })

/** The problems `loadConfig` names for this environment; none when it starts. */
export function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}
