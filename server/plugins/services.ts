/** The application's services, built once per app from its database, config and Kit client. */
import fp from 'fastify-plugin'
import { ConnectionService } from '../services/connections.ts'
import { KitCatalogueService } from '../services/kit-catalogue.ts'
import { MappingService } from '../services/mappings.ts'
import { OAuthService } from '../services/oauth.ts'

export interface Services {
  connections: ConnectionService
  mappings: MappingService
  catalogue: KitCatalogueService
  /** Connect with Kit; null when it is not configured (no client settings or no PUBLIC_URL). */
  oauth: OAuthService | null
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services
  }
}

export default fp(
  async (app) => {
    const connections = new ConnectionService(app.storage.connections, app.config.encryptionKeys, app.kit, app.log, app.kitOAuth)
    const resealed = await connections.resealWithNewestKey()
    if (resealed > 0) app.log.info({ resealed }, 'sealed stored Kit keys again with the newest ENCRYPTION_KEY')
    const mappings = new MappingService(app.storage.mappings)
    const catalogue = new KitCatalogueService(connections, mappings, app.storage.heldTags)
    connections.onConnected((communityId) => catalogue.invalidate(communityId))
    const oauth =
      app.kitOAuth &&
      new OAuthService({
        states: app.storage.oauthStates,
        connections,
        oauth: app.kitOAuth,
        keys: app.config.encryptionKeys,
        kitApiUrl: app.config.kitApiUrl,
        log: app.log,
      })
    app.decorate('services', { connections, mappings, catalogue, oauth })
  },
  { name: 'services', dependencies: ['config', 'db', 'kit'] },
)
