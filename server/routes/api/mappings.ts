import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorBody, MappingPreview, MappingPreviewBody, Mappings, MappingsPatch } from '#shared/api.ts'
import { security, sessionErrors } from './common.ts'

const described = <T extends object>(schema: T, description: string) => ({ ...schema, description })

const saved = described(Mappings, 'The saved document, with every event type.')
const refused = described(
  ErrorBody,
  'invalid_mappings or invalid_request: the message names the part at fault (e.g. events.user.signed_up.add_tags[0].name) and what to change. Nothing is saved.',
)

const changedMeanwhile = described(
  ErrorBody,
  '`mappings_changed`: the document kept changing while it was being saved (each save is kept in the history, over the document it replaced); reload and try again',
)

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { mappings, preview } = app.services
  const tags = ['mappings']

  app.get(
    '/mappings',
    {
      schema: {
        operationId: 'getMappings',
        summary: 'The mapping document',
        description:
          'What each member event does in Kit and which member fields go to which Kit fields; the defaults until the community saves.',
        tags,
        security,
        response: { ...sessionErrors, 200: saved },
      },
    },
    async (request) => mappings.get(request.user.communityId),
  )

  app.put(
    '/mappings',
    {
      schema: {
        operationId: 'replaceMappings',
        summary: 'Replace the whole mapping document',
        description:
          'Every event type must be in `events`: a document without some is refused with 400 naming each missing one, never saved as empty mappings. To change only some event types, use PATCH.',
        tags,
        security,
        body: Mappings,
        response: { ...sessionErrors, 200: saved, 400: refused, 409: changedMeanwhile },
      },
    },
    async (request) => mappings.put(request.user.communityId, request.body, request.user.userId),
  )

  app.patch(
    '/mappings',
    {
      schema: {
        operationId: 'updateMappings',
        summary: 'Change some event types or the field list',
        description:
          'Merges into the saved document: each event type given replaces that event’s mapping, `fields` (when given) replaces the whole field list, everything left out stays as saved. The merged document is checked like a PUT.',
        tags,
        security,
        body: MappingsPatch,
        response: {
          ...sessionErrors,
          200: saved,
          400: refused,
          409: {
            ...ErrorBody,
            description: '`mappings_changed`: the document kept changing while the change was merged into it; reload and try again',
          },
        },
      },
    },
    async (request) => mappings.patch(request.user.communityId, request.body, request.user.userId),
  )

  app.post(
    '/mappings/preview',
    {
      schema: {
        operationId: 'previewMappings',
        summary: 'What a draft of the mappings would change, before it is saved',
        description:
          'Plans the newest held events of each type (at most 500 each; member.snapshot: the members of an import) with the saved document and with the draft, and counts per event type what differs: rules matched, members the filter leaves out, tags, forms and sequences members would gain or lose. Events are planned one by one, as if none had been applied before (`ordering_simulated: false`). Nothing is saved and Kit is not asked.',
        tags,
        security,
        body: MappingPreviewBody,
        response: {
          ...sessionErrors,
          200: described(MappingPreview, 'The counts per event type with held events, in the order of the event types.'),
          400: described(
            refused,
            'invalid_mappings or invalid_request: the message names the part of the draft at fault (e.g. draft.events.user.signed_up.rules[0].conditions[0].value). Nothing is saved.',
          ),
        },
      },
    },
    async (request) => preview.preview(request.user.communityId, request.body.draft),
  )
}

export default routes
