/** The embedded dialect's `connections`: one Kit credential per community. */
import { and, eq, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../db/index.ts'
import { connections } from '../../db/schema/index.ts'
import type { ConnectionRecord, ConnectionRepository } from '../../core/storage.ts'
import { definedOnly } from '../values.ts'

export class SqliteConnections implements ConnectionRepository {
  // Asked for every event the intake accepts: prepared once.
  private readonly existsQuery

  constructor(private readonly db: Db) {
    this.existsQuery = db
      .select({ communityId: connections.communityId })
      .from(connections)
      .where(eq(connections.communityId, sql.placeholder('communityId')))
      .prepare()
  }

  async get(communityId: string): Promise<ConnectionRecord | undefined> {
    return this.db.select().from(connections).where(eq(connections.communityId, communityId)).get()
  }

  async exists(communityId: string): Promise<boolean> {
    return this.existsQuery.get({ communityId }) !== undefined
  }

  async all(): Promise<ConnectionRecord[]> {
    return this.db.select().from(connections).orderBy(connections.communityId).all()
  }

  async connectedCredentials(): Promise<Map<string, string>> {
    const rows = this.db
      .select({ communityId: connections.communityId, credentialId: connections.credentialId })
      .from(connections)
      .where(eq(connections.status, 'connected'))
      .all()
    return new Map(rows.map((r) => [r.communityId, r.credentialId]))
  }

  async save(record: ConnectionRecord): Promise<void> {
    // Everything but the key and the first save's time.
    const { communityId, createdAt, ...replaced } = record
    this.db
      .insert(connections)
      .values(record)
      .onConflictDoUpdate({ target: connections.communityId, set: replaced })
      .run()
  }

  async update(
    communityId: string,
    set: Parameters<ConnectionRepository['update']>[1],
    onlyIf: Parameters<ConnectionRepository['update']>[2] = {},
  ): Promise<boolean> {
    const values = definedOnly(set)
    // Nothing to write changes no row (and drizzle refuses an empty SET).
    if (Object.keys(values).length === 0) return false
    const conditions: SQL[] = [eq(connections.communityId, communityId)]
    if (onlyIf.status !== undefined) conditions.push(eq(connections.status, onlyIf.status))
    if (onlyIf.apiKeyCiphertext !== undefined) conditions.push(eq(connections.apiKeyCiphertext, onlyIf.apiKeyCiphertext))
    const result = this.db.update(connections).set(values).where(and(...conditions)).run()
    return result.changes > 0
  }

  async delete(communityId: string): Promise<void> {
    this.db.delete(connections).where(eq(connections.communityId, communityId)).run()
  }
}
