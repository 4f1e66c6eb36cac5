/**
 * Retention: finished deliveries (succeeded, failed, skipped) and their events are deleted once
 * their last update is older than the configured number of days. Runs at start and then every
 * hour, in small batches of one transaction each, yielding to the event loop between batches so
 * intake and the consumer wait at most one batch. Work still to do is never deleted. Saved versions
 * of the mappings go too, except each community's newest VERSIONS_KEPT.
 *
 * Before that, each pass purges the personal data deleted members left behind (see
 * personal-data.ts) — a deletion that may still be sent again once it is as old as retention, so
 * it is purged before its delivery is deleted — and deletes the "Delete by hand in Kit" rows the
 * owner marked done before then.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { DeliveryQueue, Purged } from '../core/queue.ts'
import type { ErasureRepository, MappingHistoryRepository } from '../core/storage.ts'

const DAY_MS = 24 * 60 * 60_000

/** The newest saved versions of a community's mappings kept whatever their age. */
export const VERSIONS_KEPT = 100

/** Between batches: what waits (intake, the consumer) runs first. */
const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve))

export interface RetentionOptions {
  queue: DeliveryQueue
  /** The mappings' saved versions, when they are kept (the app always gives them). */
  history?: Pick<MappingHistoryRepository, 'purge'>
  retentionDays: number
  log: FastifyBaseLogger
  /** Called after each batch that removed something (metrics). */
  onPurged?: (purged: Purged) => void
  /** Called after each batch that removed saved versions of the mappings, with how many (metrics). */
  onVersionsPurged?: (versions: number) => void
  batchSize?: number
  intervalMs?: number
  now?: () => number
  /** Deleted members' personal data still stored (absent: not looked for). */
  personalData?: { sweep(replayableBefore: number): Promise<number> }
  /** The "Delete by hand in Kit" list (absent: not purged). */
  erasures?: Pick<ErasureRepository, 'purgeDone'>
}

export interface RetentionRun extends Purged {
  /** Saved versions of the mappings deleted. */
  versions: number
  batches: number
}

export class Retention {
  private timer: NodeJS.Timeout | null = null
  private current: Promise<RetentionRun> | null = null
  private stopping = false
  private readonly batchSize: number
  private readonly intervalMs: number
  private readonly now: () => number

  constructor(private readonly o: RetentionOptions) {
    this.batchSize = o.batchSize ?? 500
    this.intervalMs = o.intervalMs ?? 60 * 60_000
    this.now = o.now ?? Date.now
  }

  /** Runs once now and then every interval; the timer never keeps the process alive. */
  start(): void {
    if (this.timer) return
    this.stopping = false
    this.timer = setInterval(() => void this.runLogged(), this.intervalMs)
    this.timer.unref()
    void this.runLogged()
  }

  /** Stops the schedule and waits for a run in progress to finish its current batch. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    try {
      await this.current
    } catch (err) {
      this.o.log.warn({ err }, 'retention stopped after a failed batch')
    }
  }

  /** One pass over everything past retention; a pass already under way is shared. */
  run(): Promise<RetentionRun> {
    this.current ??= this.pass().finally(() => {
      this.current = null
    })
    return this.current
  }

  private async pass(): Promise<RetentionRun> {
    const before = this.now() - this.o.retentionDays * DAY_MS
    // Awaited only when configured: a pass without them starts on the deliveries at once.
    const members = this.o.personalData ? await this.o.personalData.sweep(before) : 0
    const erasures = this.o.erasures ? await this.o.erasures.purgeDone(before) : 0
    if (members > 0 || erasures > 0) {
      this.o.log.info(
        { members, erasures, retentionDays: this.o.retentionDays },
        "retention purged deleted members' personal data and done erasures",
      )
    }
    const total: RetentionRun = { deliveries: 0, events: 0, versions: 0, batches: 0 }
    while (!this.stopping) {
      const purged = await this.o.queue.purgeFinished(before, this.batchSize)
      total.batches += 1
      total.deliveries += purged.deliveries
      total.events += purged.events
      if (purged.deliveries > 0) this.o.onPurged?.(purged)
      if (purged.deliveries < this.batchSize) break
      await yieldToEvents()
    }
    const history = this.o.history
    while (history && !this.stopping) {
      const versions = await history.purge(before, VERSIONS_KEPT, this.batchSize)
      total.versions += versions
      if (versions > 0) this.o.onVersionsPurged?.(versions)
      if (versions < this.batchSize) break
      await yieldToEvents()
    }
    return total
  }

  private async runLogged(): Promise<void> {
    try {
      const { deliveries, events, versions, batches } = await this.run()
      const line = { deliveries, events, batches, retentionDays: this.o.retentionDays }
      if (deliveries > 0) this.o.log.info(line, 'retention removed finished deliveries and their events')
      else if (versions === 0) this.o.log.debug(line, 'retention found nothing to remove')
      if (versions > 0) {
        this.o.log.info(
          { versions, kept: VERSIONS_KEPT, retentionDays: this.o.retentionDays },
          'retention removed old versions of the mappings',
        )
      }
    } catch (err) {
      this.o.log.error({ err }, 'retention failed; it will try again at its next run')
    }
  }
}
