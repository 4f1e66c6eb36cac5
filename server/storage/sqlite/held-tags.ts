/** The embedded dialect's `held_tags`: the tag each mapped tag name stands for. */
import { and, eq } from 'drizzle-orm'
import type { Db } from '../../db/index.ts'
import { heldTags } from '../../db/schema/index.ts'
import type { HeldTagRepository } from '../../core/storage.ts'

export class SqliteHeldTags implements HeldTagRepository {
  constructor(private readonly db: Db) {}

  async find(communityId: string, credentialId: string, name: string): Promise<number | null> {
    const row = this.db
      .select({ tagId: heldTags.tagId })
      .from(heldTags)
      .where(and(eq(heldTags.communityId, communityId), eq(heldTags.credentialId, credentialId), eq(heldTags.name, name)))
      .get()
    return row?.tagId ?? null
  }

  async hold(communityId: string, credentialId: string, name: string, tagId: number, now: number): Promise<void> {
    this.db
      .insert(heldTags)
      .values({ communityId, credentialId, name, tagId, heldAt: now })
      .onConflictDoUpdate({ target: [heldTags.communityId, heldTags.credentialId, heldTags.name], set: { tagId, heldAt: now } })
      .run()
  }

  async isHeld(communityId: string, name: string, tagId: number): Promise<boolean> {
    const row = this.db
      .select({ tagId: heldTags.tagId })
      .from(heldTags)
      .where(and(eq(heldTags.communityId, communityId), eq(heldTags.name, name), eq(heldTags.tagId, tagId)))
      .limit(1)
      .get()
    return row !== undefined
  }
}
