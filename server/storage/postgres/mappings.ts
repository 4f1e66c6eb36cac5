/** The shared dialect's `mappings`: one saved mapping document per community. */
import { and, eq } from 'drizzle-orm'
import type { OpenedPostgres, PgDb } from '../../db/postgres.ts'
import { mappings } from '../../db/pg-schema/index.ts'
import type { MappingRecord, MappingRepository } from '../../core/storage.ts'

export class PostgresMappings implements MappingRepository {
  private readonly db: PgDb

  constructor({ db }: OpenedPostgres) {
    this.db = db
  }

  async get(communityId: string): Promise<MappingRecord | undefined> {
    const [row] = await this.db.select().from(mappings).where(eq(mappings.communityId, communityId))
    return row
  }

  async save(record: MappingRecord): Promise<void> {
    const { document, updatedAt } = record
    await this.db.insert(mappings).values(record).onConflictDoUpdate({ target: mappings.communityId, set: { document, updatedAt } })
  }

  async replace(record: MappingRecord, expectedDocument: string): Promise<boolean> {
    const { document, updatedAt } = record
    const changed = await this.db
      .update(mappings)
      .set({ document, updatedAt })
      .where(and(eq(mappings.communityId, record.communityId), eq(mappings.document, expectedDocument)))
      .returning({ communityId: mappings.communityId })
    return changed.length > 0
  }

  async create(record: MappingRecord): Promise<boolean> {
    const stored = await this.db
      .insert(mappings)
      .values(record)
      .onConflictDoNothing({ target: mappings.communityId })
      .returning({ communityId: mappings.communityId })
    return stored.length > 0
  }
}
