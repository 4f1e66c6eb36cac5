/** Types of environment.mjs (plain JavaScript so the start scripts can import it). */
export type SecretName = 'APPSTATION_JWT_SECRET' | 'EVENTS_SECRET' | 'ENCRYPTION_KEY'

/** The parsed secrets.json: values by name, and the marks of those generated for development. */
export type StoredSecrets = Partial<Record<SecretName, string>> & { generated?: Partial<Record<SecretName, string>> }

export function isProduction(nodeEnv: string | undefined): boolean
export const SECRET_NAMES: readonly SecretName[]
export function generateSecret(name: SecretName): string
export function isGeneratedHere(stored: StoredSecrets | null | undefined, name: SecretName): boolean
export function withGeneratedSecrets(stored: StoredSecrets | null | undefined, names: readonly SecretName[]): StoredSecrets
