/**
 * The sender of the platform outbox: claims due events with leases, POSTs each one's stored
 * CloudEvent to PLATFORM_EVENTS_URL signed as Standard Webhooks (the event id as `webhook-id`, the
 * same on every attempt), and records the outcome: a 2xx answer sends it, anything else (another
 * status, a redirect, a timeout, no answer) tries it again later with exponential backoff until
 * its 72 hours have passed, then it is failed. A member's events go one at a time in the order
 * observed (the claim sees to it). Nothing here knows Kit, routes or services.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { Webhook } from 'standardwebhooks'
import type { PlatformEventOutcome, PlatformEventRecord, PlatformOutbox } from '../core/storage.ts'

export interface PlatformBackoff {
  /** The first wait, doubled after every failed attempt. */
  baseMs: number
  /** The longest wait between two attempts. */
  maxMs: number
}

export const DEFAULT_PLATFORM_BACKOFF: PlatformBackoff = { baseMs: 10_000, maxMs: 60 * 60_000 }

/**
 * The wait after the `attempts`-th failed attempt (1 for the first): `baseMs` doubled per attempt,
 * capped at `maxMs`, jittered to between half of that and all of it. `random` is in [0, 1).
 */
export function platformRetryDelay(policy: PlatformBackoff, attempts: number, random: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30))
  return Math.round(ceiling / 2 + (random * ceiling) / 2)
}

/** What a failed attempt leads to: another one at the next time, or failed once `giveUpAt` has passed. */
export function afterFailure(
  event: Pick<PlatformEventRecord, 'attempts' | 'giveUpAt'>,
  error: string,
  now: number,
  policy: PlatformBackoff,
  random: number,
): PlatformEventOutcome {
  if (now >= event.giveUpAt) return { state: 'failed', lastError: error }
  return { state: 'pending', lastError: error, nextAttemptAt: now + platformRetryDelay(policy, event.attempts + 1, random) }
}

const PURGE_EVERY_MS = 60 * 60_000
const PURGE_BATCH = 500

export interface PlatformSenderOptions {
  outbox: PlatformOutbox
  url: string
  /** `whsec_<base64>` */
  secret: string
  log: FastifyBaseLogger
  /** Reports the failures tallied while a community's quiet hour lasted (the port's `reportWaitingFailures`). */
  onIdle?: () => Promise<unknown>
  backoff?: PlatformBackoff
  /** RETENTION_DAYS in ms: finished events older than this are purged (see PlatformOutbox.purge); never when absent. */
  retentionMs?: number
  /** How long one POST may take. */
  timeoutMs?: number
  leaseMs?: number
  /** Events claimed (and sent side by side) at once. */
  batch?: number
  /** The longest sleep between two looks at the outbox. */
  idlePollMs?: number
  now?: () => number
  random?: () => number
}

/** The code an attempt's failure is stored as: never a sentence, never the answer's body. */
export type SendFailure = `http_${number}` | 'timeout' | 'network'

export class PlatformSender {
  readonly owner = `platform_${randomUUID()}`
  private readonly webhook: Webhook
  private running = false
  private loop: Promise<void> | null = null
  private wake: (() => void) | null = null
  private notified = false
  /** The last attempt here failed: the next success brings the waiting events forward. */
  private failing = false
  private readonly abort = new AbortController()
  private readonly now: () => number
  private readonly random: () => number
  private readonly timeoutMs: number
  private readonly leaseMs: number
  private readonly batch: number
  private readonly idlePollMs: number
  private readonly backoff: PlatformBackoff
  private lastPurge = 0

  constructor(private readonly o: PlatformSenderOptions) {
    this.webhook = new Webhook(o.secret)
    this.now = o.now ?? Date.now
    this.random = o.random ?? Math.random
    this.timeoutMs = o.timeoutMs ?? 10_000
    // Long enough that a POST under way is never claimed a second time by another instance.
    this.leaseMs = o.leaseMs ?? Math.max(30_000, 3 * this.timeoutMs)
    this.batch = o.batch ?? 8
    this.idlePollMs = o.idlePollMs ?? 5_000
    this.backoff = o.backoff ?? DEFAULT_PLATFORM_BACKOFF
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** New events were stored: look now rather than at the next poll. */
  notify(): void {
    this.notified = true
    this.wake?.()
  }

  /** Stops looking for work and waits for the POSTs under way (each bounded by its timeout). */
  async stop(): Promise<void> {
    this.running = false
    this.abort.abort()
    this.wake?.()
    await this.loop
  }

  /** One pass: claims what is due and sends it. Returns how many events it attempted. */
  async tick(): Promise<number> {
    const claimed = await this.o.outbox.claim(this.owner, this.now(), this.leaseMs, this.batch)
    await Promise.all(claimed.map((event) => this.deliver(event)))
    return claimed.length
  }

  private async run(): Promise<void> {
    while (this.running) {
      let attempted = 0
      try {
        attempted = await this.tick()
        if (attempted === 0) {
          await this.o.onIdle?.()
          await this.purgeNowAndThen()
        }
      } catch (err) {
        this.o.log.error({ err }, 'reading the platform outbox failed; trying again shortly')
      }
      if (attempted === 0 && this.running) await this.idle()
    }
  }

  /** At most once an hour, and only while nothing is due: retention never slows sending. */
  private async purgeNowAndThen(): Promise<void> {
    const now = this.now()
    if (this.o.retentionMs === undefined || now - this.lastPurge < PURGE_EVERY_MS) return
    this.lastPurge = now
    let purged = 0
    for (let batch = PURGE_BATCH; batch >= PURGE_BATCH && this.running;) {
      batch = await this.o.outbox.purge(now - this.o.retentionMs, PURGE_BATCH)
      purged += batch
    }
    if (purged > 0) this.o.log.info({ purged }, 'purged platform events past retention')
  }

  private async idle(): Promise<void> {
    if (this.notified) {
      this.notified = false
      return
    }
    let wait = this.idlePollMs
    try {
      const due = await this.o.outbox.nextDue()
      if (due !== null) wait = Math.max(0, Math.min(wait, due - this.now()))
    } catch (err) {
      this.o.log.error({ err }, 'reading when the next platform event is due failed')
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
    })
    this.wake = null
    this.notified = false
  }

  private async deliver(event: PlatformEventRecord): Promise<void> {
    const failure = await this.post(event)
    const now = this.now()
    // Stopping is not a failure of the platform: the attempt is given back as it was (its lease
    // is released at the next start, or runs out) and the same id is sent again.
    if (failure !== null && this.abort.signal.aborted) return
    const outcome: PlatformEventOutcome =
      failure === null ? { state: 'sent' } : afterFailure(event, failure, now, this.backoff, this.random())
    try {
      const settled = await this.o.outbox.settle(event.seq, this.owner, outcome, now)
      if (!settled) this.o.log.warn({ platformEventId: event.id }, 'platform event lease lost before its outcome was recorded')
    } catch (err) {
      this.o.log.error(
        { err, platformEventId: event.id },
        'recording a platform event outcome failed; it will be sent again when its lease expires',
      )
      return
    }
    // One receiver takes every event: once it answers again after failing, what waits for a retry
    // goes now rather than each event waiting out its own backoff.
    if (failure !== null) this.failing = true
    else if (this.failing || event.attempts > 0) {
      this.failing = false
      try {
        const brought = await this.o.outbox.expedite(now)
        if (brought > 0) this.o.log.info({ brought }, 'platform answers again: waiting events sent now')
      } catch (err) {
        this.o.log.error({ err }, 'bringing waiting platform events forward failed; they keep their own retry times')
      }
    }
    const fields = { platformEventId: event.id, type: event.type, communityId: event.communityId, attempts: event.attempts + 1 }
    if (outcome.state === 'sent') this.o.log.info(fields, 'platform event sent')
    else if (outcome.state === 'failed')
      this.o.log.warn({ ...fields, reason: outcome.lastError }, 'platform event failed after retrying for 72 hours')
    else
      this.o.log.info({ ...fields, reason: outcome.lastError, nextAttemptAt: outcome.nextAttemptAt }, 'platform event will be sent again')
  }

  /** One signed POST: null when the platform answered 2xx, else the failure's code. */
  private async post(event: PlatformEventRecord): Promise<SendFailure | null> {
    // The wall clock, whatever clock schedules the attempts: the receiver checks it against its own.
    const at = new Date()
    const signature = this.webhook.sign(event.id, at, event.body)
    try {
      const response = await fetch(this.o.url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/cloudevents+json',
          'webhook-id': event.id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body: event.body,
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.abort.signal]),
      })
      // The answer's body is never read into logs or rows; it is drained so the socket is reused.
      await response.body?.cancel()
      return response.status >= 200 && response.status < 300 ? null : `http_${response.status}`
    } catch (err) {
      return (err as Error).name === 'TimeoutError' ? 'timeout' : 'network'
    }
  }
}
