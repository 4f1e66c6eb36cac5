/** The embedded dialect's `mappings`: one saved mapping document per community. */
import { and, eq } from 'drizzle-orm'
import type { Db } from '../../db/index.ts'
import { mappings } from '../../db/schema/index.ts'
import type { MappingRecord, MappingRepository } from '../../core/storage.ts'

export class SqliteMappings implements MappingRepository {
  constructor(private readonly db: Db) {}

  async get(communityId: string): Promise<MappingRecord | undefined> {
    return this.db.select().from(mappings).where(eq(mappings.communityId, communityId)).get()
  }

  async save(record: MappingRecord): Promise<void> {
    const { document, updatedAt } = record
    this.db
      .insert(mappings)
      .values(record)
      .onConflictDoUpdate({ target: mappings.communityId, set: { document, updatedAt } })
      .run()
  }

  async replace(record: MappingRecord, expectedDocument: string): Promise<boolean> {
    const { document, updatedAt } = record
    const result = this.db
      .update(mappings)
      .set({ document, updatedAt })
      .where(and(eq(mappings.communityId, record.communityId), eq(mappings.document, expectedDocument)))
      .run()
    return result.changes > 0
  }

  async create(record: MappingRecord): Promise<boolean> {
    const result = this.db.insert(mappings).values(record).onConflictDoNothing({ target: mappings.communityId }).run()
    return result.changes > 0
  }
}
