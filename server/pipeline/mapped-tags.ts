/**
 * Which Kit tag a mapped tag stands for. A tag picked in the panel carries its id in the mapping
 * document. A tag mapped by name is created (or found) in Kit on first use, and from then on the
 * mapping holds that tag's id, so renaming it in Kit changes nothing: a plain name holds it in the
 * document (on every tag of the document with that name), a templated one per filled-in name
 * (`Access: gold`) in the held-tags table, which also records every id the plugin held for a plain
 * name. Held ids are shared by every instance and survive a restart; the id is looked up by name
 * only until it is held. A tag the plugin held that Kit no longer has (deleted there, or the key
 * now reaches another Kit account) is made again by name; a tag the owner picked never is.
 */
import type { KitApi } from '../core/kit.ts'
import type { TagTarget } from '../core/planner.ts'
import type { MappingSource } from '../core/ports.ts'
import type { HeldTagRepository } from '../core/storage.ts'
import type { KitIdCache } from './kit-ids.ts'

export type { TagTarget }

export const describeTag = (tag: TagTarget) => (tag.storedId !== null ? `tag "${tag.name}" (id ${tag.storedId})` : `tag "${tag.name}"`)

export interface MappedTagDeps {
  ids: KitIdCache
  mappings: Pick<MappingSource, 'holdTagId'>
  held: HeldTagRepository
  now: () => number
}

export class MappedTags {
  constructor(private readonly deps: MappedTagDeps) {}

  /**
   * The id to apply: the document's, else the one held for the filled-in name, else Kit's tag
   * with the name (created when adding), held from now on. null when removing a tag Kit does
   * not have (nothing to remove).
   */
  async idFor(kit: KitApi, communityId: string, tag: TagTarget, mode: 'add' | 'remove'): Promise<number | null> {
    if (tag.storedId !== null) return tag.storedId
    if (tag.templated) {
      const held = await this.deps.held.find(communityId, kit.credentialId, tag.name.toLowerCase())
      if (held !== null) return held
    }
    const id = mode === 'add' ? await this.deps.ids.tagId(kit, tag.name) : await this.deps.ids.existingTagId(kit, tag.name)
    if (id !== null) await this.hold(kit, communityId, tag, id, null)
    return id
  }

  /**
   * Kit answered as if `staleId` were wrong and its tag list has been read again: `staleId` when
   * Kit still has that tag (the tag is fine), else Kit's tag with the mapping's name, held instead
   * of the stale id. When adding, the tag is created unless the owner picked the stale one in the
   * panel. null when there is no such tag.
   */
  async afterMiss(kit: KitApi, communityId: string, tag: TagTarget, staleId: number, mode: 'add' | 'remove'): Promise<number | null> {
    if (await this.deps.ids.hasTag(kit, staleId)) return staleId
    const create =
      mode === 'add' && (tag.storedId === null || (await this.deps.held.isHeld(communityId, tag.name.toLowerCase(), tag.storedId)))
    const id = create ? await this.deps.ids.tagId(kit, tag.name) : await this.deps.ids.existingTagId(kit, tag.name)
    if (id !== null) await this.hold(kit, communityId, tag, id, staleId)
    return id
  }

  /** Recorded as the plugin's choice first, so that the document never holds an id the plugin cannot tell it chose. */
  private async hold(kit: KitApi, communityId: string, tag: TagTarget, id: number, replacing: number | null): Promise<void> {
    await this.deps.held.hold(communityId, kit.credentialId, tag.name.toLowerCase(), id, this.deps.now())
    if (!tag.templated) await this.deps.mappings.holdTagId(communityId, tag.name, id, replacing)
  }
}
