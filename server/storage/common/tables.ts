/**
 * The repositories of one small table each, written once for both dialects: `connections` (one Kit
 * credential per community), `mappings` (one mapping document per community), `held_tags` (the
 * tag each mapped tag name stands for) and `kit_subscribers` (what the plugin last wrote to Kit
 * per member and credential). Columns are selected under their record names.
 */
import { getTableColumns, sql, type SQL, type SQLWrapper } from 'drizzle-orm'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import { connections, heldTags, kitSubscribers, mappings } from '../../db/schema/index.ts'
import type {
  ConnectionRecord,
  ConnectionRepository,
  RefreshedTokens,
  HeldTagRepository,
  MappingRecord,
  MappingRepository,
  SubscriberKey,
  SubscriberRecord,
  SubscriberRepository,
} from '../../core/storage.ts'
import type { Ran, SqlRunner } from './sql.ts'
import { definedOnly } from './values.ts'

/** The schema's names of a table's columns, by record key (the same in both dialects: see the parity test). */
function namesOf(table: SQLiteTable): Record<string, string> {
  return Object.fromEntries(Object.entries(getTableColumns(table)).map(([key, column]) => [key, column.name]))
}

/** Reads, inserts and upserts records of one table, keyed by record names: what each store builds on. */
abstract class TableStore<R extends object> {
  private readonly names: Record<string, string>
  private readonly selection: SQL
  private readonly firsts = new Map<string, (values: Record<string, unknown>) => Promise<Ran>>()
  private readonly inserts = new Map<string, (values: Record<string, unknown>) => Promise<Ran>>()

  protected constructor(
    protected readonly run: SqlRunner,
    private readonly table: string,
    schema: SQLiteTable,
  ) {
    this.names = namesOf(schema)
    this.selection = sql.raw(
      Object.entries(this.names)
        .map(([key, name]) => `${name} AS "${key}"`)
        .join(', '),
    )
  }

  private column(key: keyof R & string): SQL {
    return sql.raw(this.names[key] as string)
  }

  /** `column = value` for each key given, joined by AND. */
  private where(values: Partial<R>): SQL {
    const conditions = Object.entries(values).map(([key, value]) => sql`${this.column(key as keyof R & string)} = ${value}`)
    return sql.join(conditions, sql` AND `)
  }

  /** Read on every event and delivery: rendered once per set of keys. */
  protected async first(where: Partial<R>): Promise<R | undefined> {
    const keys = Object.keys(where) as (keyof R & string)[]
    let query = this.firsts.get(keys.join())
    if (!query) {
      const conditions = sql.join(
        keys.map((key) => sql`${this.column(key)} = ${sql.placeholder(key)}`),
        sql` AND `,
      )
      query = this.run.prepare(sql`SELECT ${this.selection} FROM ${sql.raw(this.table)} WHERE ${conditions} LIMIT 1`)
      this.firsts.set(keys.join(), query)
    }
    const { rows } = await query(where)
    return rows[0] as R | undefined
  }

  protected select(orderBy: keyof R & string, where: Partial<R> = {}): Promise<R[]> {
    const filter = Object.keys(where).length > 0 ? sql`WHERE ${this.where(where)}` : sql``
    return this.run.all<R>(sql`SELECT ${this.selection} FROM ${sql.raw(this.table)} ${filter} ORDER BY ${this.column(orderBy)}`)
  }

  /**
   * `conflict`: the key columns; `update`: what an existing row takes (nothing: it is kept). Returns
   * the rows changed. Written for every delivery processed (what was last sent to Kit): rendered
   * once per shape (the keys set, the conflict and the update).
   */
  protected async insert(record: R, conflict: (keyof R & string)[], update: (keyof R & string)[] = []): Promise<number> {
    const values = definedOnly(record) as Record<string, unknown>
    const keys = Object.keys(values) as (keyof R & string)[]
    const shape = `${keys.join()}|${conflict.join()}|${update.join()}`
    let query = this.inserts.get(shape)
    if (!query) {
      const list = (parts: SQLWrapper[]) => sql.join(parts, sql`, `)
      const columns = list(keys.map((key) => this.column(key)))
      const placeholders = list(keys.map((key) => sql.placeholder(key)))
      const target = list(conflict.map((key) => this.column(key)))
      const set = list(update.map((key) => sql`${this.column(key)} = excluded.${this.column(key)}`))
      const onConflict = update.length > 0 ? sql`DO UPDATE SET ${set}` : sql`DO NOTHING`
      query = this.run.prepare(
        sql`INSERT INTO ${sql.raw(this.table)} (${columns}) VALUES (${placeholders}) ON CONFLICT (${target}) ${onConflict}`,
      )
      this.inserts.set(shape, query)
    }
    return (await query(values)).changes
  }

  protected change(set: Partial<R>, where: Partial<R>): Promise<number> {
    const assignments = sql.join(
      Object.entries(set).map(([key, value]) => sql`${this.column(key as keyof R & string)} = ${value}`),
      sql`, `,
    )
    return this.run.run(sql`UPDATE ${sql.raw(this.table)} SET ${assignments} WHERE ${this.where(where)}`)
  }

  protected remove(where: Partial<R>): Promise<number> {
    return this.run.run(sql`DELETE FROM ${sql.raw(this.table)} WHERE ${this.where(where)}`)
  }
}

/** A table of one row per community, read by its community. */
abstract class CommunityRowStore<R extends { communityId: string }> extends TableStore<R> {
  get(communityId: string): Promise<R | undefined> {
    return this.first({ communityId } as Partial<R>)
  }
}

type ConnectionSet = Parameters<ConnectionRepository['update']>[1]
type ConnectionGuard = Parameters<ConnectionRepository['update']>[2]

export class ConnectionStore extends CommunityRowStore<ConnectionRecord> implements ConnectionRepository {
  constructor(run: SqlRunner) {
    super(run, 'connections', connections)
  }

  async exists(communityId: string): Promise<boolean> {
    return (await this.get(communityId)) !== undefined
  }

  all(): Promise<ConnectionRecord[]> {
    return this.select('communityId')
  }

  async connectedCredentials(): Promise<Map<string, string>> {
    const rows = await this.select('communityId', { status: 'connected' })
    return new Map(rows.map((r) => [r.communityId, r.credentialId]))
  }

  async save(record: ConnectionRecord): Promise<void> {
    // Everything but the key and the first save's time (an API key replacing a grant clears its token columns).
    await this.insert(
      record,
      ['communityId'],
      [
        'apiKeyCiphertext',
        'keyHint',
        'status',
        'accountJson',
        'credentialId',
        'updatedAt',
        'kind',
        'refreshTokenCiphertext',
        'tokenExpiresAt',
        'tokenRefreshAt',
        'refreshLeaseUntil',
      ],
    )
  }

  async claimRefresh(communityId: string, accessCiphertext: string, now: number, until: number): Promise<boolean> {
    const changed = await this.run.run(sql`
      UPDATE connections SET refresh_lease_until = ${until}
      WHERE community_id = ${communityId} AND kind = 'oauth' AND api_key_ciphertext = ${accessCiphertext}
        AND (refresh_lease_until IS NULL OR refresh_lease_until <= ${now})`)
    return changed > 0
  }

  async saveRefreshed(communityId: string, accessCiphertext: string, tokens: RefreshedTokens): Promise<boolean> {
    const changed = await this.run.run(sql`
      UPDATE connections SET api_key_ciphertext = ${tokens.apiKeyCiphertext},
        refresh_token_ciphertext = ${tokens.refreshTokenCiphertext}, token_expires_at = ${tokens.tokenExpiresAt},
        token_refresh_at = ${tokens.tokenRefreshAt}, refresh_lease_until = NULL
      WHERE community_id = ${communityId} AND kind = 'oauth' AND api_key_ciphertext = ${accessCiphertext}`)
    return changed > 0
  }

  async releaseRefresh(communityId: string, accessCiphertext: string): Promise<void> {
    await this.run.run(sql`
      UPDATE connections SET refresh_lease_until = NULL
      WHERE community_id = ${communityId} AND api_key_ciphertext = ${accessCiphertext}`)
  }

  async update(communityId: string, set: ConnectionSet, onlyIf: ConnectionGuard = {}): Promise<boolean> {
    const values = definedOnly(set)
    // Nothing to write changes no row.
    if (Object.keys(values).length === 0) return false
    return (await this.change(values, { communityId, ...definedOnly(onlyIf) })) > 0
  }

  async delete(communityId: string): Promise<void> {
    await this.remove({ communityId })
  }
}

export class MappingStore extends CommunityRowStore<MappingRecord> implements MappingRepository {
  constructor(run: SqlRunner) {
    super(run, 'mappings', mappings)
  }

  async save(record: MappingRecord): Promise<void> {
    await this.insert(record, ['communityId'], ['document', 'updatedAt'])
  }

  async replace(record: MappingRecord, expectedDocument: string): Promise<boolean> {
    const { communityId, document, updatedAt } = record
    return (await this.change({ document, updatedAt }, { communityId, document: expectedDocument })) > 0
  }

  async create(record: MappingRecord): Promise<boolean> {
    return (await this.insert(record, ['communityId'])) > 0
  }
}

interface HeldTag {
  communityId: string
  credentialId: string
  name: string
  tagId: number
  heldAt: number
}

export class HeldTagStore extends TableStore<HeldTag> implements HeldTagRepository {
  constructor(run: SqlRunner) {
    super(run, 'held_tags', heldTags)
  }

  async find(communityId: string, credentialId: string, name: string): Promise<number | null> {
    return (await this.first({ communityId, credentialId, name }))?.tagId ?? null
  }

  async hold(communityId: string, credentialId: string, name: string, tagId: number, now: number): Promise<void> {
    await this.insert({ communityId, credentialId, name, tagId, heldAt: now }, ['communityId', 'credentialId', 'name'], ['tagId', 'heldAt'])
  }

  async isHeld(communityId: string, name: string, tagId: number): Promise<boolean> {
    return (await this.first({ communityId, name, tagId })) !== undefined
  }
}

export class SubscriberStore extends TableStore<SubscriberRecord> implements SubscriberRepository {
  constructor(run: SqlRunner) {
    super(run, 'kit_subscribers', kitSubscribers)
  }

  get(key: SubscriberKey): Promise<SubscriberRecord | undefined> {
    return this.first(key)
  }

  async save(record: SubscriberRecord): Promise<void> {
    await this.insert(record, ['communityId', 'credentialId', 'memberId'], ['email', 'subscriberId', 'firstName', 'fields', 'updatedAt'])
  }

  async forget(key: SubscriberKey): Promise<void> {
    await this.remove(key)
  }

  async forgetMember(communityId: string, memberId: string): Promise<void> {
    await this.remove({ communityId, memberId })
  }
}
