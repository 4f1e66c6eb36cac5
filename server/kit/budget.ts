/**
 * Kit's request budget, one rolling window per credential, shared by every caller in the process.
 *
 * A request holds a slot from `acquire` until `windowMs` after it completed: Kit counts a request
 * when it receives it, which is after we sent it and before we saw the answer, so stamping the
 * completion time keeps every window we count at least as full as the one Kit counts.
 */
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

export interface BudgetOptions {
  limit: number
  windowMs: number
  /** Slots only interactive callers may use; default max(1, floor(limit * 0.05)), at most limit - 1. */
  interactiveReserve?: number
  /** Interactive waiters per credential beyond which `acquire` rejects with BudgetBusyError; default unlimited. */
  maxInteractiveWaiting?: number
  now?: () => number
}

export interface BudgetUsage {
  inWindow: number
  inFlight: number
  waiting: number
  blockedUntil: number | null
}

interface Waiter {
  grant: (release: Release) => void
}

interface CredentialState {
  /** Completion times of finished requests still inside the window, oldest first. */
  log: number[]
  inFlight: number
  interactive: Waiter[]
  background: Waiter[]
  blockedUntil: number
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

const capacity = (state: Pick<BudgetState, 'limit' | 'interactiveReserve'>, priority: Priority) =>
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
  readonly limit: number
  readonly windowMs: number
  readonly interactiveReserve: number
  readonly maxInteractiveWaiting: number
  readonly #now: () => number
  readonly #states = new Map<string, CredentialState>()

  constructor(options: BudgetOptions) {
    if (!Number.isInteger(options.limit) || options.limit < 1) {
      throw new RangeError('RequestBudget limit must be a positive integer')
    }
    if (!Number.isFinite(options.windowMs) || options.windowMs <= 0) {
      throw new RangeError('RequestBudget windowMs must be a positive number')
    }
    this.limit = options.limit
    this.windowMs = options.windowMs
    const reserve = options.interactiveReserve ?? Math.max(1, Math.floor(options.limit * 0.05))
    this.interactiveReserve = Math.min(Math.max(0, Math.floor(reserve)), options.limit - 1)
    this.maxInteractiveWaiting = options.maxInteractiveWaiting ?? Number.POSITIVE_INFINITY
    this.#now = options.now ?? Date.now
  }

  acquire(credentialId: string, priority: Priority, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    const state = this.#state(credentialId)
    if (priority === 'interactive' && state.interactive.length >= this.maxInteractiveWaiting) {
      return Promise.reject(new BudgetBusyError(credentialId, this.delayFor(credentialId, 'interactive')))
    }
    const queue = priority === 'interactive' ? state.interactive : state.background
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        const index = queue.indexOf(waiter)
        if (index === -1) return
        queue.splice(index, 1)
        reject(signal?.reason)
        this.#pump(credentialId, state)
      }
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(release)
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      queue.push(waiter)
      this.#pump(credentialId, state)
    })
  }

  penalize(credentialId: string): void {
    const state = this.#state(credentialId)
    state.blockedUntil = Math.max(state.blockedUntil, this.#now() + this.windowMs)
    this.#pump(credentialId, state)
  }

  /** How long until a call of this priority could start, 0 when a slot is free now. */
  delayFor(credentialId: string, priority: Priority): number {
    const state = this.#states.get(credentialId)
    if (!state) return 0
    const now = this.#now()
    this.#prune(state, now)
    return slotFreesIn(this.#snapshot(state), priority, now)
  }

  /**
   * A slot now, or the decision not to take one: for callers that must never wait (deliveries in
   * a consumer slot). Never queues; a refused caller learns when a slot frees up.
   */
  tryAcquire(credentialId: string, priority: Priority): { release: Release } | { until: number } {
    const state = this.#state(credentialId)
    const now = this.#now()
    this.#prune(state, now)
    const decision = decideSlot(this.#snapshot(state), { priority, mayWait: false }, now)
    if (decision.action !== 'run') {
      this.#pump(credentialId, state)
      return { until: decision.action === 'put_back' ? decision.until : now + decision.ms }
    }
    state.inFlight += 1
    return { release: this.#releaser(credentialId, state) }
  }

  #snapshot(state: CredentialState): BudgetState {
    return {
      limit: this.limit,
      windowMs: this.windowMs,
      interactiveReserve: this.interactiveReserve,
      completions: state.log,
      inFlight: state.inFlight,
      waitingInteractive: state.interactive.length,
      waitingBackground: state.background.length,
      blockedUntil: state.blockedUntil,
    }
  }

  usage(credentialId: string): BudgetUsage {
    const state = this.#states.get(credentialId)
    if (!state) return { inWindow: 0, inFlight: 0, waiting: 0, blockedUntil: null }
    const now = this.#now()
    this.#prune(state, now)
    return {
      inWindow: state.log.length,
      inFlight: state.inFlight,
      waiting: state.interactive.length + state.background.length,
      blockedUntil: state.blockedUntil > now ? state.blockedUntil : null,
    }
  }

  #state(credentialId: string): CredentialState {
    let state = this.#states.get(credentialId)
    if (!state) {
      state = { log: [], inFlight: 0, interactive: [], background: [], blockedUntil: 0, timer: null, timerAt: 0 }
      this.#states.set(credentialId, state)
    }
    return state
  }

  #prune(state: CredentialState, now: number): void {
    const cutoff = now - this.windowMs
    let expired = 0
    while (expired < state.log.length && (state.log[expired] ?? 0) <= cutoff) expired += 1
    if (expired > 0) state.log.splice(0, expired)
  }

  #canStart(state: CredentialState, priority: Priority, now: number): boolean {
    return now >= state.blockedUntil && state.inFlight + state.log.length < capacity(this, priority)
  }

  #pump(credentialId: string, state: CredentialState): void {
    const now = this.#now()
    this.#prune(state, now)
    for (;;) {
      const priority: Priority | null =
        state.interactive.length > 0 ? 'interactive' : state.background.length > 0 ? 'background' : null
      if (priority === null || !this.#canStart(state, priority, now)) break
      const waiter = (priority === 'interactive' ? state.interactive : state.background).shift()
      if (!waiter) break
      state.inFlight += 1
      waiter.grant(this.#releaser(credentialId, state))
    }
    this.#schedule(credentialId, state, now)
    if (
      state.log.length === 0 &&
      state.inFlight === 0 &&
      state.interactive.length === 0 &&
      state.background.length === 0 &&
      state.blockedUntil <= now &&
      state.timer === null
    ) {
      this.#states.delete(credentialId)
    }
  }

  #releaser(credentialId: string, state: CredentialState): Release {
    let released = false
    return () => {
      if (released) return
      released = true
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
    const waiting = state.interactive.length + state.background.length > 0
    let wakeAt: number | null = null
    if (waiting) {
      if (state.blockedUntil > now) wakeAt = state.blockedUntil
      else if (state.log.length > 0) wakeAt = (state.log[0] ?? now) + this.windowMs
    }
    if (wakeAt === state.timerAt && state.timer !== null) return
    if (state.timer !== null) {
      clearTimeout(state.timer)
      state.timer = null
    }
    if (wakeAt === null) return
    state.timerAt = wakeAt
    state.timer = setTimeout(() => {
      state.timer = null
      this.#pump(credentialId, state)
    }, Math.max(0, wakeAt - now))
    state.timer.unref()
  }
}
