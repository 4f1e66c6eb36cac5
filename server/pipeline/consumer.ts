/**
 * The in-process consumer: claims due deliveries with leases, a few at a time, and records each
 * outcome. One backlog never stalls another: communities take turns at the claim by the slot time
 * they used (see FairShare), at most `perCredential` deliveries run at once for one Kit
 * credential, communities whose budget is spent are not claimed for, a delivery that finds the
 * budget spent gives its slot back (see the processor) instead of waiting in it, and one that has
 * had its turn gives its slot back when every slot is taken and other work waits. Stopping
 * finishes (or gives back) what is in flight.
 */
import type { FastifyBaseLogger } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { RequestBudget } from '../kit/budget.ts'
import type { DeletedMemberData, DeliveryMetrics } from '../core/ports.ts'
import { reasonWords, type ReasonCode } from '../core/reasons.ts'
import { step } from './step-log.ts'
import { claimPlan, FairShare, MAX_IN_FLIGHT_PER_CREDENTIAL } from './fairness.ts'
import type { BulkSender } from './bulk.ts'
import type { DeliveryProcessor } from './processor.ts'
import type { DeliveryQueue, Outcome, QueuedDelivery } from '../core/queue.ts'

const EMPTY_CLAIM_PAUSE_MS = 10
/** How long a delivery keeps its slot while every slot is taken and other work waits. */
export const TURN_MS = 500
/** How long stopping waits for work in flight before aborting it and giving it back. */
export const STOP_GRACE_MS = 10_000

export interface ConsumerOptions {
  queue: DeliveryQueue
  processor: DeliveryProcessor
  budget: RequestBudget
  /** community id → credential id of every connected community. */
  credentials: () => Promise<Map<string, string>>
  log: FastifyBaseLogger
  metrics: DeliveryMetrics
  concurrency?: number
  /** Most deliveries in flight for one Kit credential; default MAX_IN_FLIGHT_PER_CREDENTIAL (2). */
  perCredential?: number
  leaseMs?: number
  idlePollMs?: number
  /** How long a delivery keeps its slot while other work waits for one; default TURN_MS. */
  turnMs?: number
  /** A deleted member's personal data, purged once their last delivery settled (absent: left to retention). */
  deletedMembers?: DeletedMemberData
  /** Sends an initial sync's members in bulk batches when the community is connected by OAuth (absent: one by one). */
  bulk?: BulkSender
}

export class Consumer {
  readonly owner = `consumer_${randomUUID()}`
  private running = false
  private readonly inFlight = new Map<number, Promise<void>>()
  /** Credential id of each delivery in flight, by seq (absent: its community has no connection). */
  private readonly inFlightCredential = new Map<number, string>()
  /** The most deliveries ever in flight at once, by credential id. */
  private readonly peak = new Map<string, number>()
  private readonly abort = new AbortController()
  private wake: (() => void) | null = null
  /** A notify() that arrived while the loop was not asleep: the next idle() returns at once. */
  private notified = false
  private readonly lastExpedite = new Map<string, number>()
  private loop: Promise<void> | null = null
  private readonly concurrency: number
  private readonly perCredential: number
  private readonly leaseMs: number
  private readonly idlePollMs: number
  private readonly turnMs: number
  /** Told of every delivery that failed for good, with its reason code (the platform's failing notice). */
  private readonly failedListeners: ((delivery: QueuedDelivery, reason: ReasonCode) => Promise<unknown>)[] = []
  /** Work was due but left unclaimed (every slot taken, or its community not claimable) at the last look. */
  private workWaiting = false
  private readonly share: FairShare

  constructor(private readonly o: ConsumerOptions) {
    this.concurrency = o.concurrency ?? 4
    this.perCredential = o.perCredential ?? MAX_IN_FLIGHT_PER_CREDENTIAL
    if (!Number.isInteger(this.perCredential) || this.perCredential < 1) throw new RangeError('perCredential must be a positive integer')
    this.leaseMs = o.leaseMs ?? 120_000
    this.idlePollMs = o.idlePollMs ?? 1000
    this.turnMs = o.turnMs ?? TURN_MS
    this.share = new FairShare(this.turnMs)
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Calls `listener` for every delivery that fails for good; its errors are logged, never thrown. */
  onFailed(listener: (delivery: QueuedDelivery, reason: ReasonCode) => Promise<unknown>): void {
    this.failedListeners.push(listener)
  }

  private failed(delivery: QueuedDelivery, reason: ReasonCode): void {
    for (const listener of this.failedListeners) {
      listener(delivery, reason).catch((err: unknown) =>
        this.o.log.error({ err, deliveryId: delivery.id }, 'telling of a failed delivery failed'),
      )
    }
  }

  /** New work arrived (or a community was reconnected): look now rather than at the next poll. */
  notify(): void {
    this.notified = true
    this.wake?.()
  }

  private async run(): Promise<void> {
    while (this.running) {
      let claimedAny = false
      let budgetFreesIn: number | null = null
      let claimCostMs = 0
      try {
        const credentials = await this.o.credentials()
        // Each claim takes at most what every claimable credential still has room for, then the
        // plan is made again with the new work counted, until the slots are full or nothing is due.
        while (this.running && this.inFlight.size < this.concurrency) {
          const plan = claimPlan({
            credentials,
            inFlight: this.inFlightByCredential(),
            perCredential: this.perCredential,
            free: this.concurrency - this.inFlight.size,
            budgetFreesIn: (credentialId) => this.o.budget.delayFor(credentialId, 'background'),
          })
          budgetFreesIn = plan.budgetFreesIn
          if (plan.limit === 0) break
          const started = performance.now()
          const claimed = await this.o.queue.claim({
            owner: this.owner,
            limit: plan.limit,
            leaseMs: this.leaseMs,
            now: Date.now(),
            exclude: plan.exclude,
            turns: this.share.order(),
          })
          claimCostMs += performance.now() - started
          for (const delivery of claimed) {
            this.share.claimed(delivery.communityId)
            this.begin(delivery, credentials.get(delivery.communityId))
          }
          if (claimed.length > 0) claimedAny = true
          if (claimed.length < plan.limit) break
        }
      } catch (err) {
        this.o.log.error({ err }, 'claiming deliveries failed')
      }
      if (!claimedAny) {
        // Nothing claimable: pause before looking again, so a burst of intake notifications costs
        // one claim query per pause rather than one per event, and a claim that had to walk a long
        // backlog of waiting communities takes at most a fifth of the time.
        const pause = Math.max(EMPTY_CLAIM_PAUSE_MS, 4 * claimCostMs)
        await new Promise((resolve) => setTimeout(resolve, pause))
        await this.idle(budgetFreesIn)
      } else if (this.inFlight.size >= this.concurrency) {
        await this.idle(budgetFreesIn)
      }
    }
  }

  private begin(delivery: QueuedDelivery, credentialId: string | undefined): void {
    if (credentialId !== undefined) {
      this.inFlightCredential.set(delivery.seq, credentialId)
      const running = this.inFlightByCredential().get(credentialId) ?? 0
      this.peak.set(credentialId, Math.max(this.peak.get(credentialId) ?? 0, running))
    }
    const started = performance.now()
    const work = this.handle(delivery, credentialId).finally(() => {
      this.share.ran(delivery.communityId, performance.now() - started)
      this.inFlight.delete(delivery.seq)
      this.inFlightCredential.delete(delivery.seq)
      this.notify()
    })
    this.inFlight.set(delivery.seq, work)
  }

  /** Deliveries in flight now, by credential id. */
  inFlightByCredential(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const credentialId of this.inFlightCredential.values()) counts.set(credentialId, (counts.get(credentialId) ?? 0) + 1)
    return counts
  }

  /** The most deliveries that were ever in flight at once, by credential id. */
  peakInFlightByCredential(): Map<string, number> {
    return new Map(this.peak)
  }

  /** Sleeps until work is due, a spent budget frees up, new work is notified, or the poll interval passes. */
  private async idle(budgetFreesIn: number | null): Promise<void> {
    if (!this.running) {
      this.notified = false
      return
    }
    // Read on every pass, also one a notification cuts short: whether work is left waiting
    // decides whether the deliveries in the slots take turns.
    let due: number | null = null
    try {
      due = await this.o.queue.nextDueAt()
    } catch (err) {
      this.o.log.error({ err }, 'reading when the next delivery is due failed')
    }
    this.workWaiting = due !== null && due <= Date.now()
    // A notify() that arrived while the queue was being read must not be lost.
    if (this.notified || !this.running) {
      this.notified = false
      return
    }
    const candidates = [this.idlePollMs]
    // Work already due but not claimed waits on a budget, a member's earlier event or a lease:
    // those wake the loop themselves, so only future due times count here.
    if (due !== null && due > Date.now()) candidates.push(due - Date.now())
    if (budgetFreesIn !== null) candidates.push(budgetFreesIn)
    const wait = Math.max(5, Math.min(...candidates))
    return new Promise((resolve) => {
      // However the sleep ends, its wake-up goes with it: a stale one left behind would swallow
      // the next notify() (clearing `notified`) without waking anything.
      const done = () => {
        clearTimeout(timer)
        if (this.wake === wake) this.wake = null
        resolve()
      }
      const wake = () => {
        this.notified = false
        done()
      }
      const timer = setTimeout(done, wait)
      this.wake = wake
    })
  }

  private async handle(delivery: QueuedDelivery, credentialId: string | undefined): Promise<void> {
    const deadline = AbortSignal.timeout(this.leaseMs / 2)
    const signal = AbortSignal.any([this.abort.signal, deadline])
    let batch = null
    try {
      batch = (await this.o.bulk?.send(delivery, { credentialId, owner: this.owner, leaseMs: this.leaseMs, signal })) ?? null
    } catch (err) {
      // The batch's deliveries stay leased and run again when the lease expires; this one goes on alone.
      this.o.log.error({ err, deliveryId: delivery.id }, 'gathering a bulk batch failed; sending one by one')
    }
    if (!batch) return this.record(delivery, await this.attempt(delivery, deadline, signal))
    for (const { delivery: d, outcome } of batch.settled) await this.record(d, outcome)
    for (const { delivery: d, note } of batch.single) {
      // Past the batch's time (or stopping): given back untouched, due at once, not an attempt.
      if (signal.aborted) {
        await this.record(d, { status: 'pending', reason: 'turn_over', kitRequests: 0, lastError: null, nextAttemptAt: Date.now() })
        continue
      }
      const outcome = await this.attempt(d, deadline, signal)
      await this.record(d, note === null ? outcome : { ...outcome, steps: [step('warning', null, note), ...(outcome.steps ?? [])] })
    }
  }

  /** One delivery on the per-member path; a crash or a timeout becomes an outcome to retry. */
  private async attempt(delivery: QueuedDelivery, deadline: AbortSignal, signal: AbortSignal): Promise<Outcome> {
    let outcome: Outcome
    const started = performance.now()
    const turn = {
      over: () => performance.now() - started >= this.turnMs && this.inFlight.size >= this.concurrency && this.workWaiting,
    }
    try {
      outcome = await this.o.processor.process(delivery, signal, turn)
      if (deadline.aborted && outcome.status === 'retrying') {
        outcome = { ...outcome, reason: 'kit_timeout', lastError: reasonWords('kit_timeout') }
      }
    } catch (err) {
      this.o.log.error({ err, deliveryId: delivery.id }, 'processing crashed; will retry')
      outcome = {
        status: 'retrying' as const,
        reason: 'unexpected_error',
        kitRequests: 0,
        lastError: reasonWords('unexpected_error'),
        nextAttemptAt: Date.now() + 5000,
      }
    }
    return outcome
  }

  /** Settles one delivery's outcome and does what follows from it. */
  private async record(delivery: QueuedDelivery, outcome: Outcome): Promise<void> {
    // Stopping is not a failure: an attempt cut short by shutdown is given back as it was (see
    // stop()), also when its day of retries has run out and it would otherwise be given up.
    if (this.abort.signal.aborted && (outcome.status === 'retrying' || outcome.status === 'failed')) return
    let settled: boolean
    try {
      settled = await this.o.queue.settle(delivery.seq, this.owner, outcome)
    } catch (err) {
      // The database is unreachable: the lease expires and the delivery runs again (its Kit
      // calls are idempotent in effect), so nothing is lost.
      this.o.log.error({ err, deliveryId: delivery.id }, 'recording the outcome failed; the delivery will run again when its lease expires')
      return
    }
    if (!settled) {
      this.o.log.warn({ deliveryId: delivery.id }, 'lease lost before the outcome was recorded')
      return
    }
    if (outcome.status === 'pending') {
      // Put back for Kit's budget: not a processing result, and frequent under a long backlog.
      this.o.log.debug(
        { deliveryId: delivery.id, kitRequests: outcome.kitRequests, until: outcome.nextAttemptAt },
        "delivery put back until Kit's budget frees up",
      )
      return
    }
    this.o.metrics.eventsProcessed.inc({ status: outcome.status })
    if (outcome.status === 'failed') this.failed(delivery, outcome.reason ?? 'unexpected_error')
    if (outcome.status === 'succeeded' && outcome.kitRequests > 0) {
      this.kitAnswered(delivery.communityId).catch((err: unknown) => this.o.log.error({ err }, 'bringing retries forward failed'))
    }
    if (outcome.status === 'succeeded' || outcome.status === 'skipped' || outcome.status === 'failed') {
      this.o.metrics.deliveryLatency.observe((Date.now() - delivery.receivedAt) / 1000)
    }
    if (
      (outcome.status === 'succeeded' || outcome.status === 'skipped') &&
      (delivery.eventType === 'user.deleted' || outcome.reason === 'member_deleted')
    ) {
      await this.forgetDeleted(delivery)
    }
    this.o.log.info(
      { deliveryId: delivery.id, eventType: delivery.eventType, status: outcome.status, kitRequests: outcome.kitRequests },
      'delivery processed',
    )
  }

  /**
   * A member's deletion (or an older event of theirs arriving after it) settled: their personal
   * data goes now. Should that fail, retention's pass purges it later.
   */
  private async forgetDeleted(delivery: QueuedDelivery): Promise<void> {
    try {
      if (await this.o.deletedMembers?.forget(delivery.communityId, delivery.memberId)) {
        this.o.log.info({ deliveryId: delivery.id }, "purged a deleted member's personal data")
      }
    } catch (err) {
      this.o.log.error({ err, deliveryId: delivery.id }, "purging a deleted member's personal data failed; retention purges it later")
    }
  }

  /**
   * A delivery just went through to Kit: whatever this community has backing off from an outage
   * need not wait out its backoff. Checked at most once a second per community.
   */
  private async kitAnswered(communityId: string): Promise<void> {
    const now = Date.now()
    if (now - (this.lastExpedite.get(communityId) ?? 0) < 1000) return
    this.lastExpedite.set(communityId, now)
    const expedited = await this.o.queue.expediteRetries(communityId, now)
    if (expedited > 0) {
      this.o.log.info({ communityId, expedited }, 'Kit answers again; retrying deliveries now')
      this.notify()
    }
  }

  /** Stops claiming; waits up to `graceMs` for work in flight, then aborts it and gives it back. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (!this.running) return
    this.running = false
    this.notify()
    await this.loop
    const all = Promise.all(this.inFlight.values())
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs)
      }),
    ])
    clearTimeout(timer)
    if (timedOut) {
      this.abort.abort()
      await all
    }
    const released = await this.o.queue.release(this.owner)
    if (released > 0) this.o.log.info({ released }, 'gave back unfinished deliveries')
  }
}
