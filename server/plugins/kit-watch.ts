/**
 * The Kit watch (contract §7, how the plugin learns): polls every connection each
 * KIT_POLL_INTERVAL_S, registers Kit webhooks on connect and removes them on disconnect when
 * PUBLIC_URL is set, started with the app and stopped before the database closes.
 */
import fp from 'fastify-plugin'
import { KitWatch } from '../pipeline/kit-watch.ts'

declare module 'fastify' {
  interface FastifyInstance {
    kitWatch: KitWatch
  }
}

export default fp(
  async (app) => {
    const { connections } = app.services
    const watch = new KitWatch({
      states: app.storage.kitStates,
      connectedCredentials: () => connections.connectedCredentials(),
      credential: async (communityId) => {
        const credential = await connections.credential(communityId)
        return credential && credential.auth !== null
          ? { auth: credential.auth, credentialId: credential.credentialId, status: credential.status }
          : null
      },
      markInvalid: (communityId, credentialId) => connections.markInvalid(communityId, credentialId),
      kitFor: (auth, options) => app.kit.forWatch(auth, options),
      budget: app.kitBudget,
      emit: (input) => app.platformEvents.port.emit(input),
      log: app.log,
      intervalMs: app.config.kitPollIntervalS * 1000,
      publicUrl: app.config.publicUrl,
    })
    connections.onConnected((communityId) => {
      watch.connectionsChanged()
      return watch.registerWebhooks(communityId)
    })
    connections.onDisconnected(async (communityId) => {
      watch.connectionsChanged()
      await watch.removeWebhooks(communityId)
      await app.storage.kitStates.forgetConnection(communityId)
    })
    app.decorate('kitWatch', watch)
    app.addHook('onReady', async () => {
      watch.start()
    })
    app.addHook('preClose', async () => {
      await watch.stop()
    })
  },
  { name: 'kit-watch', dependencies: ['config', 'db', 'kit', 'services', 'platform-events'] },
)
