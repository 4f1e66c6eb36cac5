/**
 * Session tokens minted by App Station (CONTRACT §3): HS256 only, issuer, audience, subject,
 * community and expiry required, 10 s of clock tolerance. Routes opt in with `app.requireSession`.
 */
import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../lib/errors.ts'

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

const invalidSession = (message: string) => new AppError(401, 'invalid_session', message)

export default fp(
  async (app) => {
    const { jwtSecret, issuer, pluginId } = app.config
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
        throw invalidSession(
          code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED'
            ? 'The session token has expired; ask App Station for a new one.'
            : 'The session token is not valid for this plugin.',
        )
      }
      const { userId, communityId } = request.user
      if (typeof userId !== 'string' || userId === '' || typeof communityId !== 'string' || communityId === '') {
        throw invalidSession('The session token must carry a user (sub) and a community (cid).')
      }
      if (!request.user.roles.some((role) => ALLOWED_ROLES.has(role))) {
        throw new AppError(403, 'forbidden', 'Only community owners and admins can manage the Kit integration.')
      }
    })
  },
  { name: 'auth', dependencies: ['config'] },
)
