/** The Kit client factory and the one request budget per credential that every caller shares. */
import fp from 'fastify-plugin'
import { MAX_INTERACTIVE_WAITING, RequestBudget } from '../kit/budget.ts'
import { KitClientFactory } from '../kit/client.ts'
import { derivedKey } from '../lib/crypto.ts'

declare module 'fastify' {
  interface FastifyInstance {
    kit: KitClientFactory
    kitBudget: RequestBudget
  }
}

export default fp(
  async (app) => {
    const budget = new RequestBudget({
      limit: app.config.kitRateLimit,
      windowMs: app.config.kitRateWindowMs,
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
    app.decorate('kitBudget', budget)
    app.decorate('kit', kit)
  },
  { name: 'kit', dependencies: ['config', 'metrics', 'db'] },
)
