/** The embedded dialect's `kit_subscribers`: what the plugin last wrote to Kit per member and credential. */
import { and, eq } from 'drizzle-orm'
import type { Db } from '../../db/index.ts'
import { kitSubscribers } from '../../db/schema/index.ts'
import type { SubscriberKey, SubscriberRecord, SubscriberRepository } from '../../core/storage.ts'

const byKey = (key: SubscriberKey) =>
  and(
    eq(kitSubscribers.communityId, key.communityId),
    eq(kitSubscribers.credentialId, key.credentialId),
    eq(kitSubscribers.memberId, key.memberId),
  )

export class SqliteSubscribers implements SubscriberRepository {
  constructor(private readonly db: Db) {}

  async get(key: SubscriberKey): Promise<SubscriberRecord | undefined> {
    return this.db.select().from(kitSubscribers).where(byKey(key)).get()
  }

  async save(record: SubscriberRecord): Promise<void> {
    const { communityId, credentialId, memberId, ...values } = record
    this.db
      .insert(kitSubscribers)
      .values(record)
      .onConflictDoUpdate({ target: [kitSubscribers.communityId, kitSubscribers.credentialId, kitSubscribers.memberId], set: values })
      .run()
  }

  async forget(key: SubscriberKey): Promise<void> {
    this.db.delete(kitSubscribers).where(byKey(key)).run()
  }
}
