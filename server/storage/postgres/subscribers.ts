/** The shared dialect's `kit_subscribers`: what the plugin last wrote to Kit per member and credential. */
import { and, eq } from 'drizzle-orm'
import type { OpenedPostgres, PgDb } from '../../db/postgres.ts'
import { kitSubscribers } from '../../db/pg-schema/index.ts'
import type { SubscriberKey, SubscriberRecord, SubscriberRepository } from '../../core/storage.ts'

const byKey = (key: SubscriberKey) =>
  and(
    eq(kitSubscribers.communityId, key.communityId),
    eq(kitSubscribers.credentialId, key.credentialId),
    eq(kitSubscribers.memberId, key.memberId),
  )

export class PostgresSubscribers implements SubscriberRepository {
  private readonly db: PgDb

  constructor({ db }: OpenedPostgres) {
    this.db = db
  }

  async get(key: SubscriberKey): Promise<SubscriberRecord | undefined> {
    const [row] = await this.db.select().from(kitSubscribers).where(byKey(key))
    return row
  }

  async save(record: SubscriberRecord): Promise<void> {
    const { communityId, credentialId, memberId, ...values } = record
    await this.db
      .insert(kitSubscribers)
      .values(record)
      .onConflictDoUpdate({ target: [kitSubscribers.communityId, kitSubscribers.credentialId, kitSubscribers.memberId], set: values })
  }

  async forget(key: SubscriberKey): Promise<void> {
    await this.db.delete(kitSubscribers).where(byKey(key))
  }
}
