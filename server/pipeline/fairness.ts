/**
 * Fairness between communities: which ones the consumer may claim for now, in which order they
 * take turns at the queue, when a delivery gives its slot back (its credential's Kit budget is
 * spent, or its turn is over), and the outcome it then records. Plain functions and small
 * in-memory classes, so the rules are tested without HTTP or a database.
 */
import type { BudgetSpentError } from '../kit/budget.ts'
import type { KitApi } from '../core/kit.ts'
import type { Outcome, QueuedDelivery } from '../core/queue.ts'
import { reasonWords } from '../core/reasons.ts'
import type { ClaimTurnsOrder } from '../core/turns.ts'

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

/** Communities remembered by one consumer; beyond it the one least recently seen is forgotten (it then stands at the floor). */
const MAX_REMEMBERED = 10_000

/**
 * Fair shares of the consumer's slots (start-time fair queueing). Each community's place in line is
 * the slot time its deliveries have used, counted from a floor that moves up to the place of each
 * community served: so a busy community's hundred-call deliveries push it back by the time they
 * take, while a community that has used little — a quiet one, or one that just got work after a
 * pause — stands at the floor, at the front (ahead of the others there, having used less), without
 * a credit banked from being idle. A claim charges a whole turn at once (so a community's second
 * delivery does not slip in before others while its first runs), and the time really used
 * replaces it when the delivery ends. A community whose deliveries were put back for Kit's
 * budget, keeping their place in its own line, still waits its turn behind the others.
 */
export class FairShare {
  #floor = 0
  /** community id → its place: slot time used (in ms) and charged for deliveries in flight, from the floor it started at. */
  readonly #places = new Map<string, number>()

  constructor(
    /** What a claim charges until the delivery ends: a turn. */
    private readonly turnMs: number,
  ) {}

  /** The order the next claim goes by. */
  order(): ClaimTurnsOrder {
    return { floor: this.#floor, places: this.#places }
  }

  /** A claim took one of the community's deliveries: the floor moves up to its place, and a turn is charged. */
  claimed(communityId: string): void {
    const place = Math.max(this.#floor, this.#places.get(communityId) ?? this.#floor)
    this.#floor = place
    this.#set(communityId, place + this.turnMs)
  }

  /** One of the community's deliveries held a slot for `ms` (finished, or gave the slot back): that replaces the turn charged. */
  ran(communityId: string, ms: number): void {
    const place = this.#places.get(communityId) ?? this.#floor + this.turnMs
    this.#set(communityId, place - this.turnMs + Math.max(0, ms))
  }

  #set(communityId: string, place: number): void {
    this.#places.delete(communityId)
    this.#places.set(communityId, place)
    while (this.#places.size > MAX_REMEMBERED) {
      const oldest = this.#places.keys().next().value
      if (oldest === undefined) break
      this.#places.delete(oldest)
    }
  }
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
    reason: 'kit_budget',
    kitRequests,
    lastError: reasonWords('kit_budget', { budget: describeBudget(spent.limit, spent.windowMs), until: clockTime(spent.until) }),
    nextAttemptAt: Math.min(delivery.receivedAt, spent.until),
  }
}

/**
 * A delivery's turn in a consumer slot. A delivery needing a hundred Kit calls could otherwise hold
 * its slot for many seconds while other communities' work waits for one: once its turn is over
 * (the consumer decides: its time is up, every slot is taken and work is waiting), it gives the
 * slot back before its next Kit call, exactly as when Kit's budget is spent, and resumes at its
 * next turn without repeating what it did.
 */
export interface Turn {
  over(): boolean
}

/** Thrown before a Kit call, nothing sent, once the delivery's turn is over. */
export class TurnOver extends Error {
  override readonly name = 'TurnOver'

  constructor() {
    super("This delivery's turn in a consumer slot is over")
  }
}

/**
 * `kit`, except that every call made once the turn is over throws TurnOver instead of reaching
 * Kit (no turn: `kit` itself). Every method of the API is covered, whatever methods it gains.
 */
export function takingTurns(kit: KitApi, turn: Turn | undefined): KitApi {
  if (!turn) return kit
  return new Proxy(kit, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]): unknown => {
        if (turn.over()) return Promise.reject(new TurnOver())
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
}

/**
 * A delivery whose turn was over: back to the queue, still pending, not a failed attempt, due at
 * once and keeping its place in its community's line; the claim's turns decide when it runs again.
 */
export function putBackForTurn(delivery: Pick<QueuedDelivery, 'receivedAt'>, kitRequests: number): Outcome {
  return {
    status: 'pending',
    reason: 'turn_over',
    kitRequests,
    lastError: reasonWords('turn_over'),
    nextAttemptAt: delivery.receivedAt,
  }
}
