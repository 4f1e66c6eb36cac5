// What the configuration loader and the start scripts (`npm start`, `npm run start:cluster`) must
// decide alike, in plain JavaScript so that `node scripts/*.mjs` can import it as it is: whether
// NODE_ENV names production, and the development secrets generated for a machine, each marked
// in secrets.json as generated there. The local App Station runs only with marked secrets, so a
// secret written into that file by hand (a production one, say) never signs the tokens it mints.
import { createHash, randomBytes } from 'node:crypto'

/** `production` or `prod`, in any letter case: one rule for every place that asks. */
export function isProduction(nodeEnv) {
  return /^prod(uction)?$/i.test((nodeEnv ?? '').trim())
}

export const SECRET_NAMES = ['APPSTATION_JWT_SECRET', 'EVENTS_SECRET', 'ENCRYPTION_KEY']

/** A new random value for one secret, in the form the configuration expects. */
export function generateSecret(name) {
  switch (name) {
    case 'APPSTATION_JWT_SECRET':
      return randomBytes(48).toString('base64url')
    case 'EVENTS_SECRET':
      return `whsec_${randomBytes(32).toString('base64')}`
    case 'ENCRYPTION_KEY':
      return randomBytes(32).toString('base64')
    default:
      throw new Error(`no secret is called ${name}`)
  }
}

/**
 * The mark kept under `generated` beside a generated value: a digest of the name and the value,
 * so a value written in by hand, or edited, carries no valid mark.
 */
function markOf(name, value) {
  return createHash('sha256').update(`kit-for-appstation generated development secret\n${name}\n${value}`, 'utf8').digest('base64url')
}

/** Whether the parsed secrets.json marks its value of `name` as generated for development. */
export function isGeneratedHere(stored, name) {
  const value = stored?.[name]
  const mark = stored?.generated?.[name]
  return typeof value === 'string' && typeof mark === 'string' && mark === markOf(name, value)
}

/** The secrets.json content with new values generated (and marked) for `names`; the rest kept. */
export function withGeneratedSecrets(stored, names) {
  const { generated: marks, ...values } = stored ?? {}
  const generated = { ...marks }
  for (const name of names) {
    values[name] = generateSecret(name)
    generated[name] = markOf(name, values[name])
  }
  return { ...values, generated }
}
