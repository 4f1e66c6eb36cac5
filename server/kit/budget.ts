// Over 400 lines: one rolling window per credential with its waiters, priorities, ledger tickets and 429 blocks; the parts share one state and one pump.
/**
 * Kit's request budget, one rolling window per credential, shared by every caller in the process.
 *
 * A request holds a slot from `acquire` until `windowMs` after it completed: Kit counts a request
 * when it receives it, which is after we sent it and before we saw the answer, so stamping the
 * completion time keeps every window we count at least as full as the one Kit counts.
 *
 * With a ledger (several instances on one database) this window stays the first gate — it keeps
 * the waiting order, the interactive reserve and the put-back decision cheap — and a request it
 * lets run must also get a ticket from the ledger, which counts every instance's requests. A
 * refusal there makes the credential spent here until the time the ledger gave.
 */
import type { BudgetLedger, BudgetTicket } from '../core/storage.ts'
import { abortError } from './errors.ts'

export type Priority = 'interactive' | 'background'

export type Release = () => void

/** Interactive calls allowed to wait for one credential's budget before more are refused at once. */
export const MAX_INTERACTIVE_WAITING = 10

/** Refused at once: too many interactive calls for this credential are already waiting. */
export class BudgetBusyError extends Error {
  override readonly name = 'BudgetBusyError'

  constructor(
    readonly credentialId: string,
    /** When a slot is expected to free up for the waiting calls. */
    readonly retryAfterMs: number,
  ) {
    super(`Too many interactive Kit calls are already waiting for credential ${credentialId}`)
  }
}

/** A caller that must not wait found no slot free: its work goes back until `until`. */
export class BudgetSpentError extends Error {
  override readonly name = 'BudgetSpentError'

  constructor(
    readonly credentialId: string,
    /** Epoch ms when a slot is expected to be free. */
    readonly until: number,
    readonly limit: number,
    readonly windowMs: number,
  ) {
    super(`Kit's request budget for credential ${credentialId} has no slot free until ${new Date(until).toISOString()}`)
  }
}

/** Kit's allowance for one kind of credential: requests per rolling window. */
export interface Rate {
  limit: number
  windowMs: number
}

/** A credential's budget as every decision uses it. */
export interface CredentialRate extends Rate {
  interactiveReserve: number
  maxBlockMs: number
}

export interface BudgetOptions {
  /** The rate of every credential `rates` gives none for. */
  limit: number
  windowMs: number
  /** Another rate for some credentials (Kit allows an OAuth token more than an API key); the same for every instance. */
  rates?: (credentialId: string) => Rate | null
  /** Slots only interactive callers may use; default max(1, floor(limit * 0.05)), at most limit - 1 (of each rate). */
  interactiveReserve?: number
  /** Interactive waiters per credential beyond which `acquire` rejects with BudgetBusyError; default unlimited. */
  maxInteractiveWaiting?: number
  /**
   * The longest a 429 blocks the credential. The first 429 blocks it for a window; each 429 right
   * after a block ended (no answer from Kit in between) doubles that, up to this. Default 8 windows.
   */
  maxBlockMs?: number
  now?: () => number
  /** Counts the credential's requests across instances; without it the budget is this process's alone. */
  ledger?: BudgetLedger
  /**
   * A ledger write nobody waits for failed (marking a ticket done, recording a 429 block). The
   * ticket still frees after the ledger's stale limit; the default emits a process warning.
   */
  onLedgerError?: (error: unknown) => void
}

export interface BudgetUsage {
  inWindow: number
  inFlight: number
  waiting: number
  blockedUntil: number | null
  /** 429s in a row (see `penalize`). */
  strikes: number
}

interface Waiter {
  /** Arrival order, kept when a ledger refusal puts the waiter back in its queue. */
  seq: number
  priority: Priority
  signal: AbortSignal | undefined
  grant: (release: Release) => void
  fail: (error: Error) => void
}

interface CredentialState {
  rate: CredentialRate
  /** Completion times of finished requests still inside the window, oldest first. */
  log: number[]
  inFlight: number
  interactive: Waiter[]
  background: Waiter[]
  blockedUntil: number
  /** 429s in a row, each after the block before it ended (0: Kit answered since, or none yet). */
  strikes: number
  /**
   * Epoch ms until which the ledger said the credential is spent for each priority (0: never
   * refused). An interactive refusal also covers background calls, which have fewer slots.
   */
  sharedUntil: Record<Priority, number>
  timer: NodeJS.Timeout | null
  timerAt: number
}

/** One credential's budget as the decisions below see it. */
export interface BudgetState {
  limit: number
  windowMs: number
  interactiveReserve: number
  /** Completion times of finished requests still inside the window, oldest first. */
  completions: readonly number[]
  inFlight: number
  waitingInteractive: number
  waitingBackground: number
  /** Epoch ms until which a 429 blocks the credential (0: not blocked). */
  blockedUntil: number
}

/** What a caller asking for a slot does now: run, wait for it (ms), or give its work back until a time. */
export type SlotDecision = { action: 'run' } | { action: 'wait'; ms: number } | { action: 'put_back'; until: number }

const capacity = (state: Pick<CredentialRate, 'limit' | 'interactiveReserve'>, priority: Priority) =>
  priority === 'interactive' ? state.limit : state.limit - state.interactiveReserve

/**
 * How long until a call of `priority` could start (0: now). Interactive calls queue only behind
 * interactive ones; background calls behind everyone, and never use the interactive reserve.
 */
export function slotFreesIn(state: BudgetState, priority: Priority, now: number): number {
  const inWindow = state.completions.filter((at) => at > now - state.windowMs)
  const ahead = priority === 'interactive' ? state.waitingInteractive : state.waitingInteractive + state.waitingBackground
  const mustExpire = state.inFlight + inWindow.length + ahead - capacity(state, priority) + 1
  let delay = 0
  if (mustExpire > inWindow.length) {
    // Requests still in flight must finish first; each then holds its slot for a whole window.
    delay = state.windowMs
  } else if (mustExpire > 0) {
    delay = (inWindow[mustExpire - 1] ?? now) + state.windowMs - now
  }
  return Math.max(delay, state.blockedUntil - now, 0)
}

/**
 * The decision before every Kit request: run when a slot is free; otherwise a caller that may
 * wait (the panel) waits, and one that must not (a delivery in a consumer slot) gives its work
 * back until the slot is expected.
 */
export function decideSlot(state: BudgetState, caller: { priority: Priority; mayWait: boolean }, now: number): SlotDecision {
  const ms = slotFreesIn(state, caller.priority, now)
  if (ms <= 0) return { action: 'run' }
  return caller.mayWait ? { action: 'wait', ms } : { action: 'put_back', until: now + ms }
}

export class RequestBudget {
  /** The default rate's (see `rateOf` for a credential's own). */
  readonly limit: number
  readonly windowMs: number
  readonly interactiveReserve: number
  readonly maxInteractiveWaiting: number
  readonly maxBlockMs: number
  readonly #options: BudgetOptions
  readonly #now: () => number
  readonly #ledger: BudgetLedger | null
  readonly #onLedgerError: (error: unknown) => void
  readonly #states = new Map<string, CredentialState>()
  #arrivals = 0

  constructor(options: BudgetOptions) {
    this.#options = options
    const rate = this.#rateWith(options)
    this.limit = rate.limit
    this.windowMs = rate.windowMs
    this.interactiveReserve = rate.interactiveReserve
    this.maxInteractiveWaiting = options.maxInteractiveWaiting ?? Number.POSITIVE_INFINITY
    this.maxBlockMs = rate.maxBlockMs
    this.#now = options.now ?? Date.now
    this.#ledger = options.ledger ?? null
    this.#onLedgerError = options.onLedgerError ?? warnLedgerError
  }

  #rateWith({ limit, windowMs }: Rate): CredentialRate {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('RequestBudget limit must be a positive integer')
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError('RequestBudget windowMs must be a positive number')
    const reserve = this.#options.interactiveReserve ?? Math.max(1, Math.floor(limit * 0.05))
    return {
      limit,
      windowMs,
      interactiveReserve: Math.min(Math.max(0, Math.floor(reserve)), limit - 1),
      maxBlockMs: Math.max(windowMs, this.#options.maxBlockMs === undefined ? 8 * windowMs : this.#options.maxBlockMs),
    }
  }

  /** The budget of one credential: its own rate, or the default one. */
  rateOf(credentialId: string): CredentialRate {
    const state = this.#states.get(credentialId)
    if (state) return state.rate
    const own = this.#options.rates?.(credentialId)
    return own ? this.#rateWith(own) : this.#rateWith(this.#options)
  }

  /**
   * A slot, waiting for it as long as it takes (or until `signal` aborts). With a ledger, rejects
   * with the ledger's error when it cannot be asked: a request is never granted without a ticket.
   */
  acquire(credentialId: string, priority: Priority, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    const state = this.#state(credentialId)
    if (priority === 'interactive' && state.interactive.length >= this.maxInteractiveWaiting) {
      return Promise.reject(new BudgetBusyError(credentialId, this.delayFor(credentialId, 'interactive')))
    }
    const queue = priority === 'interactive' ? state.interactive : state.background
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        // Not queued: granted already, or its ledger take is under way and settles it.
        const index = queue.indexOf(waiter)
        if (index === -1) return
        queue.splice(index, 1)
        reject(abortError(signal))
        this.#pump(credentialId, state)
      }
      const waiter: Waiter = {
        seq: this.#arrivals++,
        priority,
        signal,
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort)
          if (signal?.aborted) {
            // Aborted while the ledger was asked: the ticket is given back as a request that ran.
            release()
            reject(abortError(signal))
            return
          }
          resolve(release)
        },
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort)
          reject(error)
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      queue.push(waiter)
      this.#pump(credentialId, state)
    })
  }

  /**
   * Kit answered 429: nobody sends for this credential for a while — a window for the first 429,
   * twice as long for each one right after a block ended, at most `maxBlockMs` (Kit asks for a
   * growing wait). A 429 while a block holds is a request sent before it: it changes nothing.
   * Blocks here at once; with a ledger the block and its strikes are shared, and the promise
   * settles once the ledger has them (it never rejects: see `onLedgerError`).
   */
  penalize(credentialId: string): Promise<void> {
    const state = this.#state(credentialId)
    const now = this.#now()
    if (state.blockedUntil <= now) {
      state.strikes += 1
      state.blockedUntil = now + blockMs(state.rate.windowMs, state.rate.maxBlockMs, state.strikes)
    }
    this.#pump(credentialId, state)
    if (!this.#ledger) return Promise.resolve()
    return this.#ledger.block(credentialId, { firstMs: state.rate.windowMs, maxMs: state.rate.maxBlockMs }).then(
      (shared) => {
        // The ledger's block counts every instance's strikes (and forgets them when any instance
        // had an answer): it replaces the guess made here.
        state.strikes = shared.strikes
        state.blockedUntil = shared.until
        this.#pump(credentialId, state)
      },
      (error: unknown) => {
        this.#onLedgerError(error)
      },
    )
  }

  /**
   * Kit answered a request of this credential with anything but 429: once no block holds (the
   * request was sent after it ended), the strikes are forgotten, here and in the ledger.
   */
  answered(credentialId: string): void {
    const state = this.#states.get(credentialId)
    if (!state || state.strikes === 0 || state.blockedUntil > this.#now()) return
    state.strikes = 0
    this.#ledger?.forgive(credentialId).catch((error: unknown) => {
      this.#onLedgerError(error)
    })
    this.#pump(credentialId, state)
  }

  /** How long until a call of this priority could start, 0 when a slot is free now. */
  delayFor(credentialId: string, priority: Priority): number {
    const state = this.#states.get(credentialId)
    if (!state) return 0
    const now = this.#now()
    this.#prune(state, now)
    return slotFreesIn(this.#snapshot(state, priority), priority, now)
  }

  /**
   * A slot now, or the decision not to take one: for callers that must never wait (deliveries in
   * a consumer slot). Never queues; a refused caller learns when a slot frees up. With a ledger,
   * the ledger's refusal is a refusal too, and its error rejects.
   */
  async tryAcquire(credentialId: string, priority: Priority): Promise<{ release: Release } | { until: number }> {
    const state = this.#state(credentialId)
    const now = this.#now()
    this.#prune(state, now)
    const decision = decideSlot(this.#snapshot(state, priority), { priority, mayWait: false }, now)
    if (decision.action !== 'run') {
      this.#pump(credentialId, state)
      return { until: decision.action === 'put_back' ? decision.until : now + decision.ms }
    }
    state.inFlight += 1
    if (!this.#ledger) return { release: this.#releaser(credentialId, state, null) }
    try {
      const slot = await this.#take(this.#ledger, credentialId, state, priority)
      if ('until' in slot) this.#pump(credentialId, state)
      return slot
    } catch (error) {
      this.#pump(credentialId, state)
      throw error
    }
  }

  /**
   * Asks the ledger for a ticket for a request this window already counts in flight; a refusal or
   * an error gives the local slot back (nothing was sent), a refusal marks the credential spent.
   */
  async #take(
    ledger: BudgetLedger,
    credentialId: string,
    state: CredentialState,
    priority: Priority,
  ): Promise<{ release: Release } | { until: number }> {
    let taken: Awaited<ReturnType<BudgetLedger['take']>>
    try {
      taken = await ledger.take(credentialId, capacity(state.rate, priority), state.rate.windowMs)
    } catch (error) {
      state.inFlight -= 1
      throw error
    }
    if ('ticket' in taken) {
      // The strikes on record for every instance: the next 429 here grows the block from them.
      state.strikes = taken.strikes ?? 0
      return { release: this.#releaser(credentialId, state, taken.ticket) }
    }
    // Never "spent until" a time already past: the waiters would ask the ledger again at once.
    const until = Math.max(taken.until, this.#now() + 1)
    state.sharedUntil.background = Math.max(state.sharedUntil.background, until)
    if (priority === 'interactive') state.sharedUntil.interactive = Math.max(state.sharedUntil.interactive, until)
    state.inFlight -= 1
    return { until }
  }

  /** A waiter the local window let run, once the ledger answered: granted, failed, or back in its queue. */
  #grantShared(ledger: BudgetLedger, credentialId: string, state: CredentialState, waiter: Waiter): void {
    this.#take(ledger, credentialId, state, waiter.priority).then(
      (slot) => {
        if ('release' in slot) {
          waiter.grant(slot.release)
          return
        }
        if (waiter.signal?.aborted) waiter.fail(abortError(waiter.signal))
        else requeue(waiter.priority === 'interactive' ? state.interactive : state.background, waiter)
        this.#pump(credentialId, state)
      },
      (error: unknown) => {
        waiter.fail(error instanceof Error ? error : new Error(String(error)))
        this.#pump(credentialId, state)
      },
    )
  }

  #snapshot(state: CredentialState, priority: Priority): BudgetState {
    return {
      limit: state.rate.limit,
      windowMs: state.rate.windowMs,
      interactiveReserve: state.rate.interactiveReserve,
      completions: state.log,
      inFlight: state.inFlight,
      waitingInteractive: state.interactive.length,
      waitingBackground: state.background.length,
      blockedUntil: Math.max(state.blockedUntil, state.sharedUntil[priority]),
    }
  }

  usage(credentialId: string): BudgetUsage {
    const state = this.#states.get(credentialId)
    if (!state) return { inWindow: 0, inFlight: 0, waiting: 0, blockedUntil: null, strikes: 0 }
    const now = this.#now()
    this.#prune(state, now)
    return {
      inWindow: state.log.length,
      inFlight: state.inFlight,
      waiting: state.interactive.length + state.background.length,
      blockedUntil: state.blockedUntil > now ? state.blockedUntil : null,
      strikes: state.strikes,
    }
  }

  #state(credentialId: string): CredentialState {
    let state = this.#states.get(credentialId)
    if (!state) {
      state = {
        rate: this.rateOf(credentialId),
        log: [],
        inFlight: 0,
        interactive: [],
        background: [],
        blockedUntil: 0,
        strikes: 0,
        sharedUntil: { interactive: 0, background: 0 },
        timer: null,
        timerAt: 0,
      }
      this.#states.set(credentialId, state)
    }
    return state
  }

  #prune(state: CredentialState, now: number): void {
    const cutoff = now - state.rate.windowMs
    let expired = 0
    while (expired < state.log.length && (state.log[expired] ?? 0) <= cutoff) expired += 1
    if (expired > 0) state.log.splice(0, expired)
  }

  #canStart(state: CredentialState, priority: Priority, now: number): boolean {
    return (
      now >= Math.max(state.blockedUntil, state.sharedUntil[priority]) && state.inFlight + state.log.length < capacity(state.rate, priority)
    )
  }

  #pump(credentialId: string, state: CredentialState): void {
    const now = this.#now()
    this.#prune(state, now)
    for (;;) {
      const priority: Priority | null = state.interactive.length > 0 ? 'interactive' : state.background.length > 0 ? 'background' : null
      if (priority === null || !this.#canStart(state, priority, now)) break
      const waiter = (priority === 'interactive' ? state.interactive : state.background).shift()
      if (!waiter) break
      state.inFlight += 1
      if (this.#ledger) this.#grantShared(this.#ledger, credentialId, state, waiter)
      else waiter.grant(this.#releaser(credentialId, state, null))
    }
    this.#schedule(credentialId, state, now)
    if (
      state.log.length === 0 &&
      state.inFlight === 0 &&
      state.interactive.length === 0 &&
      state.background.length === 0 &&
      state.blockedUntil <= now &&
      state.strikes === 0 &&
      Math.max(state.sharedUntil.interactive, state.sharedUntil.background) <= now &&
      state.timer === null
    ) {
      this.#states.delete(credentialId)
    }
  }

  #releaser(credentialId: string, state: CredentialState, ticket: BudgetTicket | null): Release {
    let released = false
    return () => {
      if (released) return
      released = true
      if (ticket) {
        this.#ledger?.done(ticket).catch((error: unknown) => {
          this.#onLedgerError(error)
        })
      }
      state.inFlight -= 1
      const at = this.#now()
      let index = state.log.length
      while (index > 0 && (state.log[index - 1] ?? 0) > at) index -= 1
      state.log.splice(index, 0, at)
      this.#pump(credentialId, state)
    }
  }

  /** Wakes the queue when the next slot frees up by time alone; releases wake it otherwise. */
  #schedule(credentialId: string, state: CredentialState, now: number): void {
    const head: Priority | null = state.interactive.length > 0 ? 'interactive' : state.background.length > 0 ? 'background' : null
    let wakeAt: number | null = null
    if (head !== null) {
      const blockedUntil = Math.max(state.blockedUntil, state.sharedUntil[head])
      if (blockedUntil > now) wakeAt = blockedUntil
      else if (state.log.length > 0) wakeAt = (state.log[0] ?? now) + state.rate.windowMs
    }
    if (wakeAt === state.timerAt && state.timer !== null) return
    if (state.timer !== null) {
      clearTimeout(state.timer)
      state.timer = null
    }
    if (wakeAt === null) return
    state.timerAt = wakeAt
    state.timer = setTimeout(
      () => {
        state.timer = null
        this.#pump(credentialId, state)
      },
      Math.max(0, wakeAt - now),
    )
    state.timer.unref()
  }
}

/** How long the `strikes`-th 429 in a row blocks: a window, doubled per strike before it, at most `maxMs`. */
export function blockMs(windowMs: number, maxMs: number, strikes: number): number {
  return Math.min(maxMs, windowMs * 2 ** Math.min(Math.max(strikes - 1, 0), 30))
}

/** Puts a waiter back in arrival order: refusals of takes asked together come back in any order. */
function requeue(queue: Waiter[], waiter: Waiter): void {
  let index = queue.length
  while (index > 0 && (queue[index - 1]?.seq ?? -1) > waiter.seq) index -= 1
  queue.splice(index, 0, waiter)
}

function warnLedgerError(error: unknown): void {
  const detail = error instanceof Error ? error.message : String(error)
  process.emitWarning(`Kit's shared request budget could not be written (the slot frees after the ledger's stale limit): ${detail}`, {
    code: 'KIT_BUDGET_LEDGER',
  })
}
