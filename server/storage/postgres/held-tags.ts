/** The shared dialect's `held_tags`: the tag each mapped tag name stands for. */
import { and, eq } from 'drizzle-orm'
import type { OpenedPostgres, PgDb } from '../../db/postgres.ts'
import { heldTags } from '../../db/pg-schema/index.ts'
import type { HeldTagRepository } from '../../core/storage.ts'

export class PostgresHeldTags implements HeldTagRepository {
  private readonly db: PgDb

  constructor({ db }: OpenedPostgres) {
    this.db = db
  }

  async find(communityId: string, credentialId: string, name: string): Promise<number | null> {
    const [row] = await this.db
      .select({ tagId: heldTags.tagId })
      .from(heldTags)
      .where(and(eq(heldTags.communityId, communityId), eq(heldTags.credentialId, credentialId), eq(heldTags.name, name)))
    return row?.tagId ?? null
  }

  async hold(communityId: string, credentialId: string, name: string, tagId: number, now: number): Promise<void> {
    await this.db
      .insert(heldTags)
      .values({ communityId, credentialId, name, tagId, heldAt: now })
      .onConflictDoUpdate({ target: [heldTags.communityId, heldTags.credentialId, heldTags.name], set: { tagId, heldAt: now } })
  }

  async isHeld(communityId: string, name: string, tagId: number): Promise<boolean> {
    const rows = await this.db
      .select({ tagId: heldTags.tagId })
      .from(heldTags)
      .where(and(eq(heldTags.communityId, communityId), eq(heldTags.name, name), eq(heldTags.tagId, tagId)))
      .limit(1)
    return rows.length > 0
  }
}
