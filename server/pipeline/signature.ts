/**
 * Standard Webhooks verification with Node's native HMAC: `v1,<base64 HMAC-SHA256(key,
 * "<webhook-id>.<webhook-timestamp>.<raw body>")>`, several signatures allowed, the timestamp
 * within five minutes, every configured secret tried (rotation). The tests check it against the
 * `standardwebhooks` reference implementation's signatures.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export const TOLERANCE_SECONDS = 5 * 60

export interface SignatureHeaders {
  id: string | undefined
  timestamp: string | undefined
  signature: string | undefined
}

export class WebhookVerifier {
  private readonly keys: Buffer[]

  /** `secrets` are the base64 keys (the part after `whsec_`). */
  constructor(
    secrets: string[],
    private readonly now: () => number = Date.now,
  ) {
    this.keys = secrets.map((s) => Buffer.from(s, 'base64'))
  }

  /** `near` (epoch ms, now by default) is the moment the timestamp must be within 5 minutes of. */
  verify(raw: Buffer, { id, timestamp, signature }: SignatureHeaders, near: number = this.now()): boolean {
    if (!id || !timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false
    const skew = Math.abs(Math.floor(near / 1000) - Number(timestamp))
    if (skew > TOLERANCE_SECONDS) return false
    const offered = signature
      .split(' ')
      .filter((s) => s.startsWith('v1,'))
      .map((s) => Buffer.from(s.slice(3), 'base64'))
      .filter((b) => b.length === 32)
    if (offered.length === 0) return false
    const prefix = `${id}.${timestamp}.`
    return this.keys.some((key) => {
      const expected = createHmac('sha256', key).update(prefix).update(raw).digest()
      return offered.some((candidate) => timingSafeEqual(candidate, expected))
    })
  }
}
