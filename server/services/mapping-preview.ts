/**
 * What a mappings draft would change, before it is saved: the community's recent held events (and
 * the members of an import) planned with the saved document and with the draft, counted by the
 * pure preview of pipeline/mapping-preview.ts. Reads the community's own rows only; no Kit request.
 */
import type { Mappings, MappingPreview } from '#shared/api.ts'
import { EVENT_TYPES } from '#shared/events.ts'
import type { MemberEvent } from '../core/envelope.ts'
import type { DeliveryQueue } from '../core/queue.ts'
import type { MappingSource } from '../core/ports.ts'
import { previewMappings, PREVIEW_EVENTS_PER_TYPE } from '../pipeline/mapping-preview.ts'
import { checkedDraft } from './mappings.ts'

export class MappingPreviewService {
  constructor(
    /** The community's saved document, as deliveries read it. */
    private readonly mappings: Pick<MappingSource, 'get'>,
    private readonly events: Pick<DeliveryQueue, 'recentEvents'>,
  ) {}

  /** The draft (checked as a save checks it) against the saved document, over each type's newest held events. */
  async preview(communityId: string, draft: Mappings): Promise<MappingPreview> {
    const proposed = checkedDraft(draft)
    const saved = await this.mappings.get(communityId)
    const held = await this.events.recentEvents(communityId, EVENT_TYPES, PREVIEW_EVENTS_PER_TYPE)
    return previewMappings({
      saved,
      draft: proposed,
      events: held.map((e) => ({ event: JSON.parse(e.payload) as MemberEvent, memberId: e.memberId, eventTime: e.eventTime })),
    })
  }
}
