/** The shared dialect's `connections`: one Kit credential per community. */
import { and, eq, type SQL } from 'drizzle-orm'
import type { OpenedPostgres, PgDb } from '../../db/postgres.ts'
import { connections } from '../../db/pg-schema/index.ts'
import type { ConnectionRecord, ConnectionRepository } from '../../core/storage.ts'
import { definedOnly } from '../values.ts'

export class PostgresConnections implements ConnectionRepository {
  private readonly db: PgDb

  constructor({ db }: OpenedPostgres) {
    this.db = db
  }

  async get(communityId: string): Promise<ConnectionRecord | undefined> {
    const [row] = await this.db.select().from(connections).where(eq(connections.communityId, communityId))
    return row
  }

  async exists(communityId: string): Promise<boolean> {
    const rows = await this.db
      .select({ communityId: connections.communityId })
      .from(connections)
      .where(eq(connections.communityId, communityId))
    return rows.length > 0
  }

  async all(): Promise<ConnectionRecord[]> {
    return this.db.select().from(connections).orderBy(connections.communityId)
  }

  async connectedCredentials(): Promise<Map<string, string>> {
    const rows = await this.db
      .select({ communityId: connections.communityId, credentialId: connections.credentialId })
      .from(connections)
      .where(eq(connections.status, 'connected'))
    return new Map(rows.map((r) => [r.communityId, r.credentialId]))
  }

  async save(record: ConnectionRecord): Promise<void> {
    // Everything but the key and the first save's time.
    const { communityId, createdAt, ...replaced } = record
    await this.db
      .insert(connections)
      .values(record)
      .onConflictDoUpdate({ target: connections.communityId, set: replaced })
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
    const result = await this.db.update(connections).set(values).where(and(...conditions))
    return (result.rowCount ?? 0) > 0
  }

  async delete(communityId: string): Promise<void> {
    await this.db.delete(connections).where(eq(connections.communityId, communityId))
  }
}
