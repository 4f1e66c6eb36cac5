/**
 * Rate limits for the settings API, keyed by the verified session rather than by address: every
 * user of a community has a general allowance, and each community a small one for the calls that
 * check a Kit key with Kit (saving a key, Test connection). Both hooks run after `requireSession`.
 */
import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { AppError, retryAfterSeconds } from '../lib/errors.ts'

export const RATE_WINDOW_MS = 60_000

/** Enough distinct keys to hold every active user; the least recently seen are dropped first. */
const TRACKED_KEYS = 20_000

type LimitHook = (request: FastifyRequest) => Promise<void>

export interface ApiLimits {
  /** Every /api/v1 request, per community and user. */
  perUser: LimitHook
  /** Requests that make Kit check a key, per community. */
  kitKeyChecks: LimitHook
}

declare module 'fastify' {
  interface FastifyInstance {
    apiLimits: ApiLimits
  }
}

export default fp(
  async (app) => {
    await app.register(rateLimit, { global: false, cache: TRACKED_KEYS })

    const limiter = (max: number, key: (request: FastifyRequest) => string, what: string): LimitHook => {
      const check = app.createRateLimit({ max, timeWindow: RATE_WINDOW_MS, keyGenerator: key })
      return async (request) => {
        const result = await check(request)
        if (result.isAllowed || !result.isExceeded) return
        const seconds = retryAfterSeconds(result.ttl)
        throw new AppError(429, 'rate_limited', `${what} Try again in ${seconds} s.`, {
          'retry-after': String(seconds),
        })
      }
    }

    app.decorate('apiLimits', {
      perUser: limiter(
        app.config.apiRateLimit,
        (request) => `user\u0000${request.user.communityId}\u0000${request.user.userId}`,
        `Too many settings requests (more than ${app.config.apiRateLimit} a minute).`,
      ),
      kitKeyChecks: limiter(
        app.config.kitCheckRateLimit,
        (request) => `kit-check\u0000${request.user.communityId}`,
        `Too many Kit key checks for this community (more than ${app.config.kitCheckRateLimit} a minute).`,
      ),
    })
  },
  { name: 'rate-limit', dependencies: ['config', 'auth'] },
)
