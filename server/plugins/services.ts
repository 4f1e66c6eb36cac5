/** The application's services, built once per app from its database, config and Kit client. */
import fp from 'fastify-plugin'
import { ConnectionService } from '../services/connections.ts'
import { ConsentService } from '../services/consent.ts'
import { ErasureService } from '../services/erasures.ts'
import { KitCatalogueService } from '../services/kit-catalogue.ts'
import { MappingPreviewService } from '../services/mapping-preview.ts'
import { MappingService } from '../services/mappings.ts'
import { OAuthService } from '../services/oauth.ts'

export interface Services {
  connections: ConnectionService
  mappings: MappingService
  /** What a mappings draft would change, from the community's held events. */
  preview: MappingPreviewService
  catalogue: KitCatalogueService
  /** Who may become a Kit subscriber; the pipeline reads it on every delivery. */
  consent: ConsentService
  /** The "Delete by hand in Kit" list. */
  erasures: ErasureService
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
    const mappings = new MappingService(app.storage.mappings, app.storage.mappingHistory)
    const catalogue = new KitCatalogueService(connections, mappings, app.storage.heldTags)
    connections.onConnected((communityId) => catalogue.invalidate(communityId))
    const consent = new ConsentService(app.storage.settings)
    const erasures = new ErasureService(app.storage.erasures)
    const preview = new MappingPreviewService(mappings, app.storage.queue)
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
    app.decorate('services', { connections, mappings, preview, catalogue, consent, erasures, oauth })
  },
  { name: 'services', dependencies: ['config', 'db', 'kit'] },
)
