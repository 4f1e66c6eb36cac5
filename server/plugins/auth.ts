/**
 * Session tokens minted by App Station: HS256 only, issuer, audience, subject, community and expiry
 * required, 10 s of clock tolerance; `iat` must be a number, not in the future, and no further than
 * SESSION_MAX_LIFETIME_S from `exp`. Routes opt in with `app.requireSession`.
 */
import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import { AppError } from '../lib/errors.ts'
import { hasNul } from '#shared/text.ts'

export interface SessionClaims {
  iss: string
  aud: string
  sub: string
  cid: string
  roles?: string[]
  iat: number
  exp: number
  jti?: string
  nbf?: number
}

export interface Session {
  userId: string
  communityId: string
  roles: string[]
  /** The token's `iat` and `exp` as sent, checked by `requireSession`. */
  issuedAt: unknown
  expiresAt: unknown
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: SessionClaims
    user: Session
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    requireSession: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

const ALLOWED_ROLES = new Set(['owner', 'admin'])
const CLOCK_TOLERANCE_MS = 10_000
const CLOCK_TOLERANCE_S = CLOCK_TOLERANCE_MS / 1000

const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/** What is wrong with the token's issue time and lifetime, or null when both are acceptable. */
function lifetimeProblem(issuedAt: unknown, expiresAt: unknown, maxLifetimeS: number, nowS: number): string | null {
  if (!isTime(issuedAt) || !isTime(expiresAt)) return 'The session token must carry numeric iat and exp claims.'
  if (issuedAt > nowS + CLOCK_TOLERANCE_S) return 'The session token was issued in the future; check the App Station clock.'
  if (expiresAt - issuedAt > maxLifetimeS) {
    return `The session token lives longer than the ${maxLifetimeS} s this plugin accepts; ask App Station for a shorter-lived one.`
  }
  return null
}

/**
 * A refused session token (401 `invalid_session`), with why: `expired` is a genuinely signed token
 * past its time — the panel then asks App Station for a new one — while `invalid` proves nothing
 * about who sent it, so those count against the source's allowance of failed tokens.
 */
export class SessionRefused extends AppError {
  constructor(
    readonly reason: 'expired' | 'invalid',
    message: string,
  ) {
    super(401, 'invalid_session', message)
  }
}

const invalidSession = (message: string) => new SessionRefused('invalid', message)

export default fp(
  async (app) => {
    const { jwtSecret, issuer, pluginId, sessionMaxLifetimeS } = app.config
    await app.register(jwt, {
      secret: jwtSecret,
      sign: { algorithm: 'HS256', iss: issuer, aud: pluginId, expiresIn: '120s' },
      verify: {
        algorithms: ['HS256'],
        allowedIss: issuer,
        allowedAud: pluginId,
        clockTolerance: CLOCK_TOLERANCE_MS,
        requiredClaims: ['iss', 'aud', 'sub', 'cid', 'iat', 'exp'],
      },
      formatUser: (claims) => ({
        userId: claims.sub,
        communityId: claims.cid,
        roles: Array.isArray(claims.roles) ? claims.roles.filter((r) => typeof r === 'string') : [],
        issuedAt: claims.iat,
        expiresAt: claims.exp,
      }),
    })

    app.decorate('requireSession', async (request: FastifyRequest) => {
      const header = request.headers.authorization
      if (!header || !/^Bearer \S+$/.test(header)) {
        throw invalidSession('Send the App Station session token as "Authorization: Bearer <token>".')
      }
      try {
        await request.jwtVerify()
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED') {
          throw new SessionRefused('expired', 'The session token has expired; ask App Station for a new one.')
        }
        throw invalidSession('The session token is not valid for this plugin.')
      }
      const { userId, communityId, issuedAt, expiresAt } = request.user
      const problem = lifetimeProblem(issuedAt, expiresAt, sessionMaxLifetimeS, Date.now() / 1000)
      if (problem) throw invalidSession(problem)
      if (
        typeof userId !== 'string' ||
        userId === '' ||
        typeof communityId !== 'string' ||
        communityId === '' ||
        hasNul(userId) ||
        hasNul(communityId)
      ) {
        throw invalidSession('The session token must carry a user (sub) and a community (cid).')
      }
      if (!request.user.roles.some((role) => ALLOWED_ROLES.has(role))) {
        throw new AppError(403, 'forbidden', 'Only community owners and admins can manage the Kit integration.')
      }
    })
  },
  { name: 'auth', dependencies: ['config'] },
)
