/**
 * Fairness between communities: which ones the consumer may claim for now, and the outcome of a
 * delivery that gave its slot back because its credential's Kit budget was spent. Pure functions,
 * so the rules are tested without HTTP or a database.
 */
import type { BudgetSpentError } from '../kit/budget.ts'
import type { Outcome, QueuedDelivery } from './queue.ts'

/** Deliveries the consumer runs at once for one Kit credential, whatever its backlog. */
export const MAX_IN_FLIGHT_PER_CREDENTIAL = 2

export interface ClaimInput {
  /** community id → credential id of every connected community. */
  credentials: ReadonlyMap<string, string>
  /** Deliveries in flight by credential id. */
  inFlight: ReadonlyMap<string, number>
  /** Most deliveries in flight for one credential. */
  perCredential: number
  /** Free consumer slots. */
  free: number
  /** ms until the credential's budget has a background slot free (0: now). */
  budgetFreesIn: (credentialId: string) => number
}

export interface ClaimPlan {
  /** Communities not to claim for: their credential is at its cap or its budget is spent. */
  exclude: string[]
  /**
   * How many deliveries one claim may take: never more than any claimable credential still has
   * room for, so a single claim cannot push one credential past its cap. 0: claim nothing.
   */
  limit: number
  /** When the first spent budget frees up (ms), or null. */
  budgetFreesIn: number | null
}

export function claimPlan(input: ClaimInput): ClaimPlan {
  const exclude: string[] = []
  let budgetFreesIn: number | null = null
  let busiest = 0
  const delays = new Map<string, number>()
  for (const [communityId, credentialId] of input.credentials) {
    const running = input.inFlight.get(credentialId) ?? 0
    if (running >= input.perCredential) {
      exclude.push(communityId)
      continue
    }
    let delay = delays.get(credentialId)
    if (delay === undefined) {
      delay = input.budgetFreesIn(credentialId)
      delays.set(credentialId, delay)
    }
    if (delay > 0) {
      exclude.push(communityId)
      budgetFreesIn = budgetFreesIn === null ? delay : Math.min(budgetFreesIn, delay)
      continue
    }
    busiest = Math.max(busiest, running)
  }
  const limit = Math.max(0, Math.min(input.free, input.perCredential - busiest))
  return { exclude, limit, budgetFreesIn }
}

/** "120 requests a minute", "20 requests every 2 seconds". */
export function describeBudget(limit: number, windowMs: number): string {
  const requests = `${limit} request${limit === 1 ? '' : 's'}`
  if (windowMs === 60_000) return `${requests} a minute`
  if (windowMs === 1000) return `${requests} a second`
  if (windowMs % 60_000 === 0) return `${requests} every ${windowMs / 60_000} minutes`
  return `${requests} every ${Number((windowMs / 1000).toFixed(3))} seconds`
}

/** "10:42:05 UTC", rounded up to the second. */
const clockTime = (ms: number) => `${new Date(Math.ceil(ms / 1000) * 1000).toISOString().slice(11, 19)} UTC`

/**
 * A delivery that found its credential's budget spent: back to the queue, still pending, not a
 * failed attempt; what it already applied in Kit stays applied. It keeps its place in line (due
 * since it was received, so it resumes before the community's later work), and the consumer claims
 * nothing for the credential until the budget frees up at `spent.until`, the time the message gives.
 */
export function putBackForBudget(spent: BudgetSpentError, delivery: Pick<QueuedDelivery, 'receivedAt'>, kitRequests: number): Outcome {
  return {
    status: 'pending',
    kitRequests,
    lastError: `Waiting for Kit's rate limit (${describeBudget(spent.limit, spent.windowMs)}); continues at ${clockTime(spent.until)}.`,
    nextAttemptAt: Math.min(delivery.receivedAt, spent.until),
  }
}
