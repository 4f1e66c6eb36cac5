/** The application's services, built once per app from its database, config and Kit client. */
import fp from 'fastify-plugin'
import { ConnectionService } from '../services/connections.ts'
import { KitCatalogueService } from '../services/kit-catalogue.ts'
import { MappingService } from '../services/mappings.ts'

export interface Services {
  connections: ConnectionService
  mappings: MappingService
  catalogue: KitCatalogueService
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services
  }
}

export default fp(
  async (app) => {
    const connections = new ConnectionService(app.storage.connections, app.config.encryptionKeys, app.kit, app.log)
    const resealed = await connections.resealWithNewestKey()
    if (resealed > 0) app.log.info({ resealed }, 'sealed stored Kit keys again with the newest ENCRYPTION_KEY')
    const mappings = new MappingService(app.storage.mappings, app.storage.mappingHistory)
    const catalogue = new KitCatalogueService(connections, mappings, app.storage.heldTags)
    connections.onConnected((communityId) => catalogue.invalidate(communityId))
    app.decorate('services', { connections, mappings, catalogue })
  },
  { name: 'services', dependencies: ['config', 'db', 'kit'] },
)
