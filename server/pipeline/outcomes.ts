/**
 * What an attempt's end becomes: a plan that sends nothing (a skip or a hold, by its reason code),
 * and every error an executed plan can end with, mapped to one outcome — retried later, put back,
 * held or failed — in this one place.
 */
import type { FastifyBaseLogger } from 'fastify'
import { BudgetSpentError } from '../kit/budget.ts'
import type { KitApi } from '../core/kit.ts'
import { isKitError, type KitError } from '../kit/errors.ts'
import type { Unsent } from '../core/planner.ts'
import type { CredentialSource } from '../core/ports.ts'
import type { Outcome, QueuedDelivery } from '../core/queue.ts'
import { reasonWords, type ReasonCode, type ReasonDetails } from '../core/reasons.ts'
import { backoffDelay, retriesExpired, type RetryPolicy } from '../core/retry-policy.ts'
import { putBackForBudget, putBackForTurn, TurnOver } from './fairness.ts'
import { capitalise, step, type StepLog } from './step-log.ts'
import type { SubscriberWriter } from './subscriber-writer.ts'

/** Tried again shortly, for the reason given (nothing went wrong that waiting cannot fix). */
class Retryable extends Error {
  constructor(readonly reason: ReasonCode) {
    super(reason)
  }
}

/** Kit refused part of the delivery for a reason retrying cannot fix; the message says what to do. */
export class Refused extends Error {
  constructor(
    message: string,
    /** The Kit object refused (a form's or a sequence's name), for the failed step. */
    readonly target: string | null = null,
  ) {
    super(message)
  }
}

/** A delivery that sent nothing, with its reason as its one step. */
const skippedBecause = (reason: ReasonCode, details: ReasonDetails = {}): Outcome => {
  const words = reasonWords(reason, details)
  return { status: 'skipped', reason, kitRequests: 0, lastError: words, steps: [step('skipped', null, words)] }
}

export const held = (kitRequests: number, reason: ReasonCode): Outcome => ({
  status: 'held',
  reason,
  kitRequests,
  lastError: reasonWords(reason),
})

/** The outcome of a plan that sends nothing. */
export const unsent = (plan: Unsent): Outcome => (plan.kind === 'skip' ? skippedBecause(plan.reason, plan.details) : held(0, plan.reason))

export interface OutcomeDeps {
  retry: RetryPolicy
  log: FastifyBaseLogger
  now: () => number
  random: () => number
  connections: Pick<CredentialSource, 'markInvalid'>
  subscribers: Pick<SubscriberWriter, 'forget'>
}

export class Outcomes {
  constructor(private readonly deps: OutcomeDeps) {}

  /** Kit no longer knows the subscriber id the plugin remembered: forget it and try again. */
  async subscriberGone(kit: KitApi, delivery: QueuedDelivery): Promise<never> {
    await this.deps.subscribers.forget(delivery, kit.credentialId)
    throw new Retryable('subscriber_gone')
  }

  private backoff(attempts: number): number {
    return backoffDelay(this.deps.retry, attempts, this.deps.random())
  }

  /** `aborted`: the consumer stopped this attempt (shutdown or its deadline); nothing went wrong in Kit. */
  async of(
    err: unknown,
    delivery: QueuedDelivery,
    credentialId: string,
    kitRequests: number,
    log: StepLog,
    aborted: boolean,
  ): Promise<Outcome> {
    const now = this.deps.now()
    const expired = retriesExpired(this.deps.retry, delivery.receivedAt, now)
    // A failed delivery always says what this attempt had already applied in Kit.
    const failed = (reason: ReasonCode, message: string): Outcome => {
      const applied = log.appliedPrefix()
      return { status: 'failed', reason, kitRequests, lastError: applied ? `${applied}${message}` : capitalise(message) }
    }
    const retryLater = (reason: ReasonCode, delay: number, details: ReasonDetails = {}): Outcome => {
      const message = reasonWords(reason, details)
      return expired
        ? failed('retries_exhausted', reasonWords('retries_exhausted', { message }))
        : { status: 'retrying', reason, kitRequests, lastError: message, nextAttemptAt: now + delay }
    }

    if (err instanceof BudgetSpentError) return putBackForBudget(err, delivery, kitRequests)
    if (err instanceof TurnOver) return putBackForTurn(delivery, kitRequests)
    if (err instanceof Retryable) return retryLater(err.reason, 1000)
    if (err instanceof Refused) return failed('mapping_refused', err.message)
    if (!isKitError(err)) {
      if (aborted) return retryLater('attempt_stopped', this.backoff(delivery.attempts))
      this.deps.log.error({ err, deliveryId: delivery.id }, 'delivery failed unexpectedly')
      return retryLater('unexpected_error', this.backoff(delivery.attempts))
    }
    const kitErr: KitError = err
    switch (kitErr.kind) {
      case 'invalid_credentials':
        await this.deps.connections.markInvalid(delivery.communityId, credentialId)
        return held(kitRequests, 'key_rejected')
      case 'rate_limited':
        return retryLater('kit_rate_limited', Math.round(this.deps.retry.rateLimitWaitMs + this.deps.random() * 1000))
      case 'unavailable':
        return retryLater('kit_unavailable', this.backoff(delivery.attempts), { message: kitErr.message })
      case 'not_found':
        // Tags, forms and sequences settle their own 404s where they are called; what is left can
        // only be the subscriber: forgotten, and nothing else (the key's tag and field ids stay).
        await this.deps.subscribers.forget(delivery, credentialId)
        return delivery.attempts >= 3
          ? failed('kit_not_found', reasonWords('kit_not_found', { message: kitErr.message }))
          : retryLater('subscriber_gone', 1000)
      case 'validation':
        return failed('kit_refused', `${log.attempting ?? 'the change was not applied'}: Kit refused it: ${kitErr.message}`)
    }
  }
}
