/**
 * Request allowances, all per minute and answered with 429 `rate_limited` and `Retry-After`:
 * - the settings API, keyed by the verified session: every user of a community has a general
 *   allowance, and each community a small one for the calls that check a Kit key with Kit (saving
 *   a key, Test connection); both run after `requireSession`;
 * - failed session tokens, per source address: a source over its allowance gets 429 instead of 401
 *   for a token that fails (a valid token always passes, so one noisy client behind a shared
 *   address locks nobody out; a genuine token that merely expired is not counted);
 * - `POST /events`, per source address, generous: a flood guard far above the platform's rate.
 *
 * On PostgreSQL the first three are counted in the database, so every instance draws from the same
 * allowance; the event intake is counted by each instance in memory (a shared counter would be a
 * database write on the hottest row for every event). The embedded dialect counts in memory.
 */
import rateLimit from '@fastify/rate-limit'
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError, retryAfterSeconds } from '../lib/errors.ts'
import type { RateLimitCounter } from '../core/storage.ts'

export const RATE_WINDOW_MS = 60_000

/** Enough distinct keys to hold every active user or source; the least recently seen are dropped first. */
const TRACKED_KEYS = 20_000

type LimitHook = (request: FastifyRequest) => Promise<void>
type CreateRateLimit = FastifyInstance['createRateLimit']

export interface ApiLimits {
  /** Every /api/v1 request, per community and user. */
  perUser: LimitHook
  /** Requests that make Kit check a key, per community. */
  kitKeyChecks: LimitHook
  /** Counts a session token that failed; throws 429 once the source is over its allowance. */
  failedSession: LimitHook
}

declare module 'fastify' {
  interface FastifyInstance {
    apiLimits: ApiLimits
    /** Every POST /events request, per source address. */
    intakeLimit: LimitHook
  }
}

/** A `@fastify/rate-limit` store over the counter every instance shares. */
function sharedStore(counter: RateLimitCounter): FastifyRateLimitStoreCtor {
  return class SharedStore implements FastifyRateLimitStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
      counter.hit(key, timeWindow).then(
        ({ hits, resetsInMs }) => callback(null, { current: hits, ttl: resetsInMs }),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      )
    }

    child(): FastifyRateLimitStore {
      return this
    }
  }
}

/** `createRateLimit` of its own `@fastify/rate-limit` registration, with this store (in memory when absent). */
async function limitsWith(app: FastifyInstance, store?: FastifyRateLimitStoreCtor): Promise<CreateRateLimit> {
  let create: CreateRateLimit | undefined
  await app.register(async (scope) => {
    await scope.register(rateLimit, { global: false, cache: TRACKED_KEYS, ...(store ? { store } : {}) })
    create = (options) => scope.createRateLimit(options)
  })
  if (!create) throw new Error('@fastify/rate-limit did not decorate createRateLimit')
  return create
}

const tooMany = (what: string, ms: number) => {
  const seconds = retryAfterSeconds(ms)
  return new AppError(429, 'rate_limited', `${what} Try again in ${seconds} s.`, { 'retry-after': String(seconds) })
}

/**
 * Sources this instance saw go over their allowance of failed tokens, until their window ends: their
 * next failures answer 429 without another write to the shared counter.
 */
class OverLimitSources {
  readonly #until = new Map<string, number>()

  remaining(source: string, now: number): number {
    const until = this.#until.get(source)
    if (until === undefined) return 0
    if (until > now) return until - now
    this.#until.delete(source)
    return 0
  }

  add(source: string, until: number, now: number): void {
    if (this.#until.size >= TRACKED_KEYS) {
      for (const [key, time] of this.#until) if (time <= now) this.#until.delete(key)
      const oldest = this.#until.keys().next()
      if (this.#until.size >= TRACKED_KEYS && !oldest.done) this.#until.delete(oldest.value)
    }
    this.#until.set(source, until)
  }
}

export default fp(
  async (app) => {
    const { apiRateLimit, kitCheckRateLimit, sessionFailureLimit, eventsRateLimit } = app.config
    const local = await limitsWith(app)
    const counter = app.storage.rateLimits
    const shared = counter ? await limitsWith(app, sharedStore(counter)) : local

    const limiter = (create: CreateRateLimit, max: number, key: (request: FastifyRequest) => string) => {
      const check = create({ max, timeWindow: RATE_WINDOW_MS, keyGenerator: key })
      /** Counts the request; the ms until its window resets when that took it over `max`, else null. */
      return async (request: FastifyRequest): Promise<number | null> => {
        const result = await check(request)
        return result.isAllowed || !result.isExceeded ? null : result.ttl
      }
    }
    const refuseOver =
      (count: ReturnType<typeof limiter>, what: string): LimitHook =>
      async (request) => {
        const waitMs = await count(request)
        if (waitMs !== null) throw tooMany(what, waitMs)
      }

    const countFailure = limiter(shared, sessionFailureLimit, (request) => `session-failure\u0000${request.ip}`)
    const overLimit = new OverLimitSources()
    const failureWords = `Too many session tokens that are not valid from this address (more than ${sessionFailureLimit} a minute).`

    app.decorate('apiLimits', {
      perUser: refuseOver(
        limiter(shared, apiRateLimit, (request) => `user\u0000${request.user.communityId}\u0000${request.user.userId}`),
        `Too many settings requests (more than ${apiRateLimit} a minute).`,
      ),
      kitKeyChecks: refuseOver(
        limiter(shared, kitCheckRateLimit, (request) => `kit-check\u0000${request.user.communityId}`),
        `Too many Kit key checks for this community (more than ${kitCheckRateLimit} a minute).`,
      ),
      failedSession: async (request) => {
        const now = Date.now()
        const blockedMs = overLimit.remaining(request.ip, now)
        if (blockedMs > 0) throw tooMany(failureWords, blockedMs)
        const waitMs = await countFailure(request)
        if (waitMs === null) return
        overLimit.add(request.ip, now + waitMs, now)
        throw tooMany(failureWords, waitMs)
      },
    })
    app.decorate(
      'intakeLimit',
      refuseOver(
        limiter(local, eventsRateLimit, (request) => `events\u0000${request.ip}`),
        `Too many events from this address (more than ${eventsRateLimit} a minute).`,
      ),
    )
  },
  { name: 'rate-limit', dependencies: ['config', 'db', 'auth'] },
)
