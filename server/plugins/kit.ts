/**
 * The Kit client factory, the one request budget per credential that every caller shares (an API
 * key's rate, or an OAuth connection's), and Kit's OAuth endpoints when Connect with Kit is configured.
 */
import fp from 'fastify-plugin'
import { MAX_INTERACTIVE_WAITING, RequestBudget } from '../kit/budget.ts'
import { isOAuthCredentialId, KitClientFactory } from '../kit/client.ts'
import { KitOAuthClient } from '../kit/oauth.ts'
import { derivedKey } from '../lib/crypto.ts'

declare module 'fastify' {
  interface FastifyInstance {
    kit: KitClientFactory
    kitBudget: RequestBudget
    /** Null unless KIT_OAUTH_CLIENT_ID, KIT_OAUTH_CLIENT_SECRET and PUBLIC_URL are set. */
    kitOAuth: KitOAuthClient | null
  }
}

export default fp(
  async (app) => {
    const budget = new RequestBudget({
      limit: app.config.kitRateLimit,
      windowMs: app.config.kitRateWindowMs,
      rates: (credentialId) =>
        isOAuthCredentialId(credentialId) ? { limit: app.config.kitOAuthRateLimit, windowMs: app.config.kitOAuthRateWindowMs } : null,
      maxInteractiveWaiting: MAX_INTERACTIVE_WAITING,
      // Several instances on one database count Kit's budget together.
      ...(app.storage.ledger ? { ledger: app.storage.ledger } : {}),
      onLedgerError: (err) => app.log.warn({ err }, 'writing to the shared Kit budget ledger failed'),
    })
    const kit = new KitClientFactory({
      baseUrl: app.config.kitApiUrl,
      budget,
      credentialKey: derivedKey(app.config.encryptionKeys, 'credential id'),
      onRequest: (info) => {
        app.metrics.kitRequests.inc({ status: String(info.status) })
        app.log.debug({ kit: { method: info.method, path: info.path, status: info.status, ms: info.durationMs } }, 'kit request')
      },
    })
    const { kitOAuth } = app.config
    app.decorate('kitBudget', budget)
    app.decorate('kit', kit)
    app.decorate('kitOAuth', kitOAuth ? new KitOAuthClient({ baseUrl: app.config.kitApiUrl, ...kitOAuth }) : null)
  },
  { name: 'kit', dependencies: ['config', 'metrics', 'db'] },
)
