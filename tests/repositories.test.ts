// Over 400 lines: one behavioural suite for every repository, run unchanged against both dialects.
/**
 * The repositories behind connections, mappings, Kit subscribers and syncs: one behavioural suite,
 * run against the embedded dialect (a fresh in-memory SQLite per test) and the shared one (a fresh
 * PostgreSQL database per test, skipped without PostgreSQL).
 */
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { reasonWords } from '../server/core/reasons.ts'
import { openDatabase } from '../server/db/index.ts'
import { openPostgres } from '../server/db/postgres.ts'
import { postgresRunner, sqliteRunner } from '../server/storage/common/sql.ts'
import { sharedStores } from '../server/storage/common/stores.ts'
import type {
  ConnectionRecord,
  ConnectionRepository,
  Dialect,
  HeldTagRepository,
  MappingRepository,
  StagedSnapshot,
  SubscriberRecord,
  SubscriberRepository,
  SyncRepository,
} from '../server/core/storage.ts'
import { createTestDatabase, postgresAvailable } from './helpers/postgres.ts'

interface Harness {
  connections: ConnectionRepository
  mappings: MappingRepository
  heldTags: HeldTagRepository
  subscribers: SubscriberRepository
  syncs: SyncRepository
  /** Raw SQL with `?` placeholders, for arranging and inspecting rows the interface does not expose. */
  query<T>(sql: string, ...params: unknown[]): Promise<T[]>
  close(): Promise<void>
}

async function openSqlite(): Promise<Harness> {
  const { sqlite } = openDatabase(':memory:')
  return {
    ...sharedStores(sqliteRunner(sqlite)),
    query: async <T>(sql: string, ...params: unknown[]) => {
      const stmt = sqlite.prepare(sql)
      return (stmt.reader ? stmt.all(...params) : (stmt.run(...params), [])) as T[]
    },
    close: async () => {
      sqlite.close()
    },
  }
}

// The test reads bigint columns as numbers, as the repositories do.
const BIGINT_OID = 20
const bigintAsNumber = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === BIGINT_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
}

async function openPg(): Promise<Harness> {
  const database = await createTestDatabase('kitrepos')
  try {
    const opened = await openPostgres(database.url, { poolSize: 3 })
    return {
      ...sharedStores(postgresRunner(opened.pool)),
      query: async <T>(sql: string, ...params: unknown[]) => {
        let n = 0
        const text = sql.replace(/\?/g, () => `$${++n}`)
        return (await opened.pool.query({ text, values: params, types: bigintAsNumber })).rows as T[]
      },
      close: async () => {
        await opened.pool.end()
        await database.drop()
      },
    }
  } catch (err) {
    await database.drop()
    throw err
  }
}

const pgUp = await postgresAvailable()

const dialects: { dialect: Dialect; available: boolean; open: () => Promise<Harness> }[] = [
  { dialect: 'sqlite', available: true, open: openSqlite },
  { dialect: 'postgres', available: pgUp, open: openPg },
]

let n = 0
const unique = (prefix: string) => `${prefix}_${++n}`

function connection(overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  const communityId = overrides.communityId ?? unique('c')
  return {
    communityId,
    apiKeyCiphertext: `v1.sealed.${communityId}.${++n}`,
    keyHint: '…abcd',
    status: 'connected',
    accountJson: JSON.stringify({ id: 1, name: 'Acme', primary_email_address: 'owner@example.com', plan_type: null }),
    credentialId: unique('cred'),
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    kind: 'api_key',
    refreshTokenCiphertext: null,
    tokenExpiresAt: null,
    tokenRefreshAt: null,
    refreshLeaseUntil: null,
    ...overrides,
  }
}

function subscriber(overrides: Partial<SubscriberRecord> = {}): SubscriberRecord {
  return {
    communityId: unique('c'),
    credentialId: unique('cred'),
    memberId: unique('m'),
    email: `${unique('member')}@example.com`,
    subscriberId: 2_000_000_000_000 + ++n,
    firstName: 'Ada',
    fields: JSON.stringify({ mk_plan: 'gold', mk_level: null }),
    updatedAt: 1_767_225_600_000,
    ...overrides,
  }
}

/** `count` members of sync `syncId`, with event ids as the sync service makes them. */
function members(syncId: string, count: number, from = 1): StagedSnapshot[] {
  return Array.from({ length: count }, (_, i) => {
    const line = from + i
    return {
      deliveryId: `dlv_${syncId}_${line}`,
      eventId: `${syncId}_${line}`,
      memberId: `m_${line}`,
      memberEmail: `member${line}@example.com`,
      payload: JSON.stringify({ id: `${syncId}_${line}`, type: 'member.snapshot', line }),
    }
  })
}

const HELD = reasonWords('sync_importing')
const iso = (ms: number) => new Date(ms).toISOString()

interface DeliveryRow {
  id: string
  community_id: string
  event_id: string
  event_type: string
  member_id: string
  member_email: string
  event_time: number
  status: string
  last_error: string | null
  next_attempt_at: number
  received_at: number
  created_at: string
  updated_at: string
  priority: number
  sync_id: string | null
}

describe.each(dialects)('$dialect', ({ dialect, available, open }) => {
  describe.skipIf(!available)('repositories', () => {
    let h: Harness
    beforeEach(async () => {
      h = await open()
    })
    afterEach(async () => {
      await h?.close()
    })

    const deliveriesOf = (syncId: string) =>
      h.query<DeliveryRow>(
        `SELECT id, community_id, event_id, event_type, member_id, member_email, event_time, status, last_error,
                next_attempt_at, received_at, created_at, updated_at, priority, sync_id
           FROM deliveries WHERE sync_id = ? ORDER BY id`,
        syncId,
      )
    const statusOf = async (deliveryId: string) =>
      (await h.query<{ status: string; reason: string | null }>('SELECT status, reason FROM deliveries WHERE id = ?', deliveryId))[0]
    const countOf = async (sql: string, ...params: unknown[]) =>
      (await h.query<{ n: number }>(`SELECT CAST(count(*) AS INTEGER) AS n ${sql}`, ...params))[0]?.n

    describe('connections', () => {
      it('returns nothing for a community without a saved key, then what was saved', async () => {
        const record = connection()
        expect(await h.connections.get(record.communityId)).toBeUndefined()
        expect(await h.connections.exists(record.communityId)).toBe(false)
        await h.connections.save(record)
        expect(await h.connections.get(record.communityId)).toEqual(record)
        expect(await h.connections.exists(record.communityId)).toBe(true)
      })

      it('keeps created_at when a community saves a key again, replacing everything else', async () => {
        const first = connection({ createdAt: '2026-01-01T00:00:00.000Z' })
        await h.connections.save(first)
        const again = connection({
          communityId: first.communityId,
          status: 'connected',
          keyHint: '…wxyz',
          accountJson: null,
          createdAt: '2026-03-03T00:00:00.000Z',
          updatedAt: '2026-03-03T00:00:00.000Z',
        })
        await h.connections.save(again)
        expect(await h.connections.get(first.communityId)).toEqual({ ...again, createdAt: '2026-01-01T00:00:00.000Z' })
      })

      it('lists every connection, and the credentials of the connected ones only', async () => {
        const a = connection({ communityId: 'c_a' })
        const b = connection({ communityId: 'c_b', status: 'invalid' })
        const c = connection({ communityId: 'c_c' })
        for (const r of [c, a, b]) await h.connections.save(r)
        expect(await h.connections.all()).toEqual([a, b, c])
        expect(await h.connections.connectedCredentials()).toEqual(
          new Map([
            ['c_a', a.credentialId],
            ['c_c', c.credentialId],
          ]),
        )
      })

      it('updates only the columns given and says whether a row changed', async () => {
        const record = connection()
        await h.connections.save(record)
        const changed = await h.connections.update(record.communityId, { status: 'invalid', updatedAt: '2026-02-02T00:00:00.000Z' })
        expect(changed).toBe(true)
        expect(await h.connections.get(record.communityId)).toEqual({ ...record, status: 'invalid', updatedAt: '2026-02-02T00:00:00.000Z' })
        expect(await h.connections.update('c_nobody', { status: 'invalid' })).toBe(false)
      })

      it('clears the account when asked to, and changes nothing when given nothing to set', async () => {
        const record = connection()
        await h.connections.save(record)
        expect(await h.connections.update(record.communityId, { accountJson: null })).toBe(true)
        expect((await h.connections.get(record.communityId))?.accountJson).toBeNull()
        expect(await h.connections.update(record.communityId, { status: undefined })).toBe(false)
        expect(await h.connections.get(record.communityId)).toEqual({ ...record, accountJson: null })
      })

      it('marks a connection invalid only while it is still connected', async () => {
        const record = connection({ status: 'invalid', updatedAt: '2026-01-05T00:00:00.000Z' })
        await h.connections.save(record)
        const changed = await h.connections.update(
          record.communityId,
          { status: 'invalid', updatedAt: '2026-09-09T00:00:00.000Z' },
          { status: 'connected' },
        )
        expect(changed).toBe(false)
        expect(await h.connections.get(record.communityId)).toEqual(record)

        await h.connections.update(record.communityId, { status: 'connected' })
        expect(
          await h.connections.update(
            record.communityId,
            { status: 'invalid', updatedAt: '2026-09-09T00:00:00.000Z' },
            { status: 'connected' },
          ),
        ).toBe(true)
        expect(await h.connections.get(record.communityId)).toMatchObject({ status: 'invalid', updatedAt: '2026-09-09T00:00:00.000Z' })
      })

      it('reseals only if the ciphertext is still the one read', async () => {
        const record = connection()
        await h.connections.save(record)
        expect(
          await h.connections.update(record.communityId, { apiKeyCiphertext: 'v2.resealed' }, { apiKeyCiphertext: 'v1.something-else' }),
        ).toBe(false)
        expect((await h.connections.get(record.communityId))?.apiKeyCiphertext).toBe(record.apiKeyCiphertext)
        expect(
          await h.connections.update(
            record.communityId,
            { apiKeyCiphertext: 'v2.resealed' },
            { apiKeyCiphertext: record.apiKeyCiphertext },
          ),
        ).toBe(true)
        expect((await h.connections.get(record.communityId))?.apiKeyCiphertext).toBe('v2.resealed')
      })

      it('never reads or changes another community’s connection', async () => {
        const mine = connection()
        const theirs = connection()
        await h.connections.save(mine)
        await h.connections.save(theirs)
        await h.connections.update(mine.communityId, { status: 'invalid', apiKeyCiphertext: 'v1.mine' })
        await h.connections.save({ ...connection({ communityId: mine.communityId }) })
        await h.connections.delete(mine.communityId)
        expect(await h.connections.get(mine.communityId)).toBeUndefined()
        expect(await h.connections.exists(mine.communityId)).toBe(false)
        expect(await h.connections.get(theirs.communityId)).toEqual(theirs)
        expect(await h.connections.all()).toEqual([theirs])
      })
    })

    describe('mappings', () => {
      it('returns nothing until a community saves, then its latest document', async () => {
        expect(await h.mappings.get('c_a')).toBeUndefined()
        await h.mappings.save({ communityId: 'c_a', document: '{"v":1}', updatedAt: '2026-01-01T00:00:00.000Z' })
        await h.mappings.save({ communityId: 'c_a', document: '{"v":2}', updatedAt: '2026-01-02T00:00:00.000Z' })
        expect(await h.mappings.get('c_a')).toEqual({ communityId: 'c_a', document: '{"v":2}', updatedAt: '2026-01-02T00:00:00.000Z' })
      })

      it('never reads or replaces another community’s document', async () => {
        await h.mappings.save({ communityId: 'c_a', document: '{"a":true}', updatedAt: '2026-01-01T00:00:00.000Z' })
        await h.mappings.save({ communityId: 'c_b', document: '{"b":true}', updatedAt: '2026-01-03T00:00:00.000Z' })
        expect(await h.mappings.get('c_a')).toMatchObject({ document: '{"a":true}' })
        expect(await h.mappings.get('c_b')).toMatchObject({ document: '{"b":true}' })
        expect(await h.mappings.get('c_c')).toBeUndefined()
      })

      it('replaces a document only while it is still the one read, in its own community only', async () => {
        await h.mappings.save({ communityId: 'c_a', document: '{"v":1}', updatedAt: '2026-01-01T00:00:00.000Z' })
        await h.mappings.save({ communityId: 'c_b', document: '{"v":1}', updatedAt: '2026-01-01T00:00:00.000Z' })
        // Someone saved v2 after this caller read v1: its replacement is refused.
        await h.mappings.save({ communityId: 'c_a', document: '{"v":2}', updatedAt: '2026-01-02T00:00:00.000Z' })
        expect(
          await h.mappings.replace({ communityId: 'c_a', document: '{"v":"1+key"}', updatedAt: '2026-01-03T00:00:00.000Z' }, '{"v":1}'),
        ).toBe(false)
        expect(await h.mappings.get('c_a')).toMatchObject({ document: '{"v":2}' })
        expect(
          await h.mappings.replace({ communityId: 'c_a', document: '{"v":"2+key"}', updatedAt: '2026-01-03T00:00:00.000Z' }, '{"v":2}'),
        ).toBe(true)
        expect(await h.mappings.get('c_a')).toEqual({
          communityId: 'c_a',
          document: '{"v":"2+key"}',
          updatedAt: '2026-01-03T00:00:00.000Z',
        })
        expect(await h.mappings.get('c_b')).toMatchObject({ document: '{"v":1}' })
        expect(await h.mappings.replace({ communityId: 'c_c', document: '{}', updatedAt: '2026-01-03T00:00:00.000Z' }, '{}')).toBe(false)
      })

      it('creates a document only for a community that has none, never overwriting one saved meanwhile', async () => {
        expect(await h.mappings.create({ communityId: 'c_a', document: '{"held":1}', updatedAt: '2026-01-01T00:00:00.000Z' })).toBe(true)
        expect(await h.mappings.get('c_a')).toEqual({ communityId: 'c_a', document: '{"held":1}', updatedAt: '2026-01-01T00:00:00.000Z' })
        expect(await h.mappings.create({ communityId: 'c_a', document: '{"held":2}', updatedAt: '2026-01-02T00:00:00.000Z' })).toBe(false)
        expect(await h.mappings.get('c_a')).toMatchObject({ document: '{"held":1}' })
        expect(await h.mappings.get('c_b')).toBeUndefined()
      })
    })

    describe('held tags', () => {
      it('holds one tag id per community, credential and name, the latest replacing the one before', async () => {
        await h.heldTags.hold('c_a', 'cred_1', 'access: gold', 1003, 1_000)
        expect(await h.heldTags.find('c_a', 'cred_1', 'access: gold')).toBe(1003)
        await h.heldTags.hold('c_a', 'cred_1', 'access: gold', 1011, 2_000)
        expect(await h.heldTags.find('c_a', 'cred_1', 'access: gold')).toBe(1011)
        expect(await h.heldTags.find('c_a', 'cred_1', 'access: silver')).toBeNull()
      })

      it('never reads another community’s or another credential’s held tag', async () => {
        await h.heldTags.hold('c_a', 'cred_1', 'access: gold', 1003, 1_000)
        await h.heldTags.hold('c_b', 'cred_1', 'access: gold', 2003, 1_000)
        expect(await h.heldTags.find('c_b', 'cred_1', 'access: gold')).toBe(2003)
        expect(await h.heldTags.find('c_a', 'cred_2', 'access: gold')).toBeNull()
        expect(await h.heldTags.find('c_c', 'cred_1', 'access: gold')).toBeNull()
        expect(await h.heldTags.find('c_a', 'cred_1', 'access: gold')).toBe(1003)
      })

      it('says whether the plugin held an id for a name under any credential, in its own community only', async () => {
        await h.heldTags.hold('c_a', 'cred_1', 'active member', 1003, 1_000)
        expect(await h.heldTags.isHeld('c_a', 'active member', 1003)).toBe(true)
        expect(await h.heldTags.isHeld('c_a', 'active member', 1004)).toBe(false)
        expect(await h.heldTags.isHeld('c_a', 'cancelled', 1003)).toBe(false)
        expect(await h.heldTags.isHeld('c_b', 'active member', 1003)).toBe(false)
      })
    })

    describe('Kit subscribers', () => {
      it('saves, reads back and replaces what was last written to Kit for a member', async () => {
        const record = subscriber()
        const key = { communityId: record.communityId, credentialId: record.credentialId, memberId: record.memberId }
        expect(await h.subscribers.get(key)).toBeUndefined()
        await h.subscribers.save(record)
        expect(await h.subscribers.get(key)).toEqual(record)
        const changed = { ...record, email: 'new@example.com', firstName: null, fields: '{}', updatedAt: record.updatedAt + 1 }
        await h.subscribers.save(changed)
        expect(await h.subscribers.get(key)).toEqual(changed)
      })

      it('keeps one record per community, credential and member, and forgets only the one asked', async () => {
        const base = subscriber()
        const otherCredential = subscriber({ communityId: base.communityId, memberId: base.memberId })
        const otherCommunity = subscriber({ credentialId: base.credentialId, memberId: base.memberId })
        for (const r of [base, otherCredential, otherCommunity]) await h.subscribers.save(r)
        const keyOf = (r: SubscriberRecord) => ({ communityId: r.communityId, credentialId: r.credentialId, memberId: r.memberId })

        await h.subscribers.forget(keyOf(base))
        expect(await h.subscribers.get(keyOf(base))).toBeUndefined()
        expect(await h.subscribers.get(keyOf(otherCredential))).toEqual(otherCredential)
        expect(await h.subscribers.get(keyOf(otherCommunity))).toEqual(otherCommunity)
      })
    })

    describe('syncs', () => {
      const A = 'c_alpha'
      const B = 'c_beta'
      const STARTED = 1_767_225_600_000
      const staged = (id: string, communityId = A, startedAt = STARTED) => ({
        id,
        communityId,
        startedAt,
        eventType: 'member.snapshot',
        heldReason: 'sync_importing' as const,
      })
      const totals = { total: 3, refused: 1, refusedExamples: '[{"line":4,"reason":"bad email"}]' }

      it('creates a sync that is importing, visible by id in its own community only', async () => {
        await h.syncs.create({ id: 'sync_1', communityId: A, format: 'jsonl', startedAt: STARTED })
        expect(await h.syncs.get(A, 'sync_1')).toEqual({
          id: 'sync_1',
          community_id: A,
          status: 'importing',
          format: 'jsonl',
          started_at: STARTED,
          total: 0,
          refused: 0,
          refused_examples: '[]',
          done: null,
          failed: null,
          skipped: null,
          kit_requests: null,
          finished_at: null,
          updated_at: STARTED,
        })
        expect(await h.syncs.get(B, 'sync_1')).toBeUndefined()
        expect(await h.syncs.importing(Number.MAX_SAFE_INTEGER)).toEqual(['sync_1'])
        // One started at or after the cutoff may still be reading its file on another instance.
        expect(await h.syncs.importing(STARTED)).toEqual([])
        expect(await h.syncs.recent(A, 10)).toEqual([])
      })

      it('stages members as events and held snapshot deliveries dated at the sync’s start', async () => {
        await h.syncs.create({ id: 'sync_1', communityId: A, format: 'csv', startedAt: STARTED })
        await h.syncs.stage(staged('sync_1'), members('sync_1', 2))
        expect(await deliveriesOf('sync_1')).toEqual(
          [1, 2].map((line) => ({
            id: `dlv_sync_1_${line}`,
            community_id: A,
            event_id: `sync_1_${line}`,
            event_type: 'member.snapshot',
            member_id: `m_${line}`,
            member_email: `member${line}@example.com`,
            event_time: STARTED,
            status: 'held',
            last_error: HELD,
            next_attempt_at: STARTED,
            received_at: STARTED,
            created_at: iso(STARTED),
            updated_at: iso(STARTED),
            priority: 1,
            sync_id: 'sync_1',
          })),
        )
        expect(
          await h.query('SELECT community_id, id, type, member_id, member_email, event_time, payload, received_at FROM events ORDER BY id'),
        ).toEqual(
          members('sync_1', 2).map((m) => ({
            community_id: A,
            id: m.eventId,
            type: 'member.snapshot',
            member_id: m.memberId,
            member_email: m.memberEmail,
            event_time: STARTED,
            payload: m.payload,
            received_at: STARTED,
          })),
        )
      })

      it('stages a large batch whole, and none of it when one member cannot be stored', async () => {
        await h.syncs.create({ id: 'sync_big', communityId: A, format: 'csv', startedAt: STARTED })
        await h.syncs.stage(staged('sync_big'), members('sync_big', 2500))
        expect(await countOf('FROM deliveries WHERE sync_id = ? AND status = ?', 'sync_big', 'held')).toBe(2500)
        expect(await countOf('FROM events WHERE community_id = ?', A)).toBe(2500)

        // The last member repeats an event id already stored: the whole batch is refused.
        const batch = [...members('sync_big', 3, 3001), { ...members('sync_big', 1, 3001)[0]!, deliveryId: 'dlv_dup' }]
        await expect(h.syncs.stage(staged('sync_big'), batch)).rejects.toThrow()
        expect(await countOf('FROM deliveries WHERE sync_id = ?', 'sync_big')).toBe(2500)
        expect(await countOf('FROM events WHERE community_id = ?', A)).toBe(2500)
      })

      it('goes through its life: accept, progress, pause, resume, cancel, finish, leaving in-flight deliveries alone', async () => {
        await h.syncs.create({ id: 'sync_1', communityId: A, format: 'csv', startedAt: STARTED })
        await h.syncs.create({ id: 'sync_other', communityId: A, format: 'csv', startedAt: STARTED })
        await h.syncs.stage(staged('sync_1'), members('sync_1', 3))
        await h.syncs.stage(staged('sync_1'), members('sync_1', 1, 4))
        await h.syncs.stage(staged('sync_other'), members('sync_other', 2))

        await h.syncs.accept('sync_1', { ...totals, total: 4 }, STARTED + 10)
        expect(await h.syncs.get(A, 'sync_1')).toMatchObject({
          status: 'running',
          total: 4,
          refused: 1,
          refused_examples: totals.refusedExamples,
          updated_at: STARTED + 10,
          finished_at: null,
        })
        for (const d of await deliveriesOf('sync_1')) {
          expect(d).toMatchObject({ status: 'pending', last_error: null, next_attempt_at: STARTED + 10 })
        }
        expect(await h.syncs.importing(Number.MAX_SAFE_INTEGER)).toEqual(['sync_other'])
        expect((await deliveriesOf('sync_other')).map((d) => d.status)).toEqual(['held', 'held'])

        // One member done with two Kit requests, one in flight (leased until well after every step below).
        await h.query(`UPDATE deliveries SET status = 'succeeded', kit_requests = 2 WHERE id = ?`, 'dlv_sync_1_1')
        await h.query(`UPDATE deliveries SET lease_owner = 'worker', lease_until = ? WHERE id = ?`, STARTED + 1_000_000, 'dlv_sync_1_2')
        await h.query(`UPDATE deliveries SET status = 'retrying', kit_requests = 1 WHERE id = ?`, 'dlv_sync_1_3')
        expect(await h.syncs.progress('sync_1')).toEqual([
          { status: 'pending', n: 2, k: 0 },
          { status: 'retrying', n: 1, k: 1 },
          { status: 'succeeded', n: 1, k: 2 },
        ])

        await h.syncs.pause('sync_1', 'sync_paused', STARTED + 20)
        expect(await h.syncs.get(A, 'sync_1')).toMatchObject({ status: 'paused', updated_at: STARTED + 20 })
        expect(await statusOf('dlv_sync_1_1')).toEqual({ status: 'succeeded', reason: null })
        expect(await statusOf('dlv_sync_1_2')).toEqual({ status: 'pending', reason: null })
        expect(await statusOf('dlv_sync_1_3')).toEqual({ status: 'held', reason: 'sync_paused' })
        expect(await statusOf('dlv_sync_1_4')).toEqual({ status: 'held', reason: 'sync_paused' })
        expect((await deliveriesOf('sync_1')).find((d) => d.id === 'dlv_sync_1_4')).toMatchObject({
          last_error: reasonWords('sync_paused'),
          updated_at: iso(STARTED + 20),
        })

        await h.syncs.resume('sync_1', STARTED + 30)
        expect(await h.syncs.get(A, 'sync_1')).toMatchObject({ status: 'running', updated_at: STARTED + 30 })
        const resumed = (await deliveriesOf('sync_1')).find((d) => d.id === 'dlv_sync_1_3')
        expect(resumed).toMatchObject({ status: 'pending', last_error: null, next_attempt_at: STARTED + 30, updated_at: iso(STARTED + 30) })
        expect(await statusOf('dlv_sync_1_2')).toEqual({ status: 'pending', reason: null })

        await h.syncs.pause('sync_1', 'sync_paused', STARTED + 35)
        await h.syncs.cancel('sync_1', 'sync_cancelled', STARTED + 40)
        expect(await h.syncs.get(A, 'sync_1')).toMatchObject({ status: 'cancelled', updated_at: STARTED + 40 })
        expect(await statusOf('dlv_sync_1_1')).toEqual({ status: 'succeeded', reason: null })
        expect(await statusOf('dlv_sync_1_2')).toEqual({ status: 'pending', reason: null })
        expect(await statusOf('dlv_sync_1_3')).toEqual({ status: 'skipped', reason: 'sync_cancelled' })
        expect(await statusOf('dlv_sync_1_4')).toEqual({ status: 'skipped', reason: 'sync_cancelled' })
        // Another sync's deliveries were never touched.
        expect((await deliveriesOf('sync_other')).map((d) => [d.status, d.last_error])).toEqual([
          ['held', HELD],
          ['held', HELD],
        ])

        await h.syncs.finish('sync_1', 'cancelled', { done: 2, failed: 0, skipped: 2, kitRequests: 5 }, STARTED + 50)
        expect(await h.syncs.get(A, 'sync_1')).toMatchObject({
          status: 'cancelled',
          done: 2,
          failed: 0,
          skipped: 2,
          kit_requests: 5,
          finished_at: STARTED + 50,
          updated_at: STARTED + 50,
        })
      })

      it('counts nothing for a sync without deliveries', async () => {
        await h.syncs.create({ id: 'sync_empty', communityId: A, format: 'csv', startedAt: STARTED })
        expect(await h.syncs.progress('sync_empty')).toEqual([])
      })

      it('discards a sync with its events and deliveries, and nothing of another sync', async () => {
        await h.syncs.create({ id: 'sync_gone', communityId: A, format: 'csv', startedAt: STARTED })
        await h.syncs.create({ id: 'sync_kept', communityId: A, format: 'csv', startedAt: STARTED })
        await h.syncs.stage(staged('sync_gone'), members('sync_gone', 3))
        await h.syncs.stage(staged('sync_kept'), members('sync_kept', 2))
        await h.syncs.discard('sync_gone')

        expect(await h.syncs.get(A, 'sync_gone')).toBeUndefined()
        expect(await countOf('FROM deliveries WHERE sync_id = ?', 'sync_gone')).toBe(0)
        expect((await h.query<{ id: string }>('SELECT id FROM events ORDER BY id')).map((r) => r.id)).toEqual([
          'sync_kept_1',
          'sync_kept_2',
        ])
        expect(await countOf('FROM deliveries WHERE sync_id = ?', 'sync_kept')).toBe(2)
        expect(await h.syncs.importing(Number.MAX_SAFE_INTEGER)).toEqual(['sync_kept'])
      })

      it('lists a community’s recent accepted syncs newest first, up to the limit, never another community’s', async () => {
        const accepted = async (id: string, communityId: string, startedAt: number) => {
          await h.syncs.create({ id, communityId, format: 'csv', startedAt })
          await h.syncs.accept(id, totals, startedAt + 1)
        }
        await accepted('sync_old', A, STARTED)
        await accepted('sync_new', A, STARTED + 2000)
        await accepted('sync_mid', A, STARTED + 1000)
        await accepted('sync_theirs', B, STARTED + 5000)
        await h.syncs.create({ id: 'sync_reading', communityId: A, format: 'csv', startedAt: STARTED + 9000 })

        expect((await h.syncs.recent(A, 10)).map((s) => s.id)).toEqual(['sync_new', 'sync_mid', 'sync_old'])
        expect((await h.syncs.recent(A, 2)).map((s) => s.id)).toEqual(['sync_new', 'sync_mid'])
        expect((await h.syncs.recent(B, 10)).map((s) => s.id)).toEqual(['sync_theirs'])
        expect((await h.syncs.recent(A, 1))[0]).toMatchObject({ status: 'running', started_at: STARTED + 2000, total: 3 })
      })

      it('lists syncs started in the same millisecond in a stable order: created later first, when ids sort by creation', async () => {
        for (const id of ['sync_t1', 'sync_t2', 'sync_t3']) {
          await h.syncs.create({ id, communityId: A, format: 'csv', startedAt: STARTED })
          await h.syncs.accept(id, totals, STARTED)
        }
        expect((await h.syncs.recent(A, 10)).map((s) => s.id)).toEqual(['sync_t3', 'sync_t2', 'sync_t1'])
      })

      it.runIf(dialect === 'sqlite')('breaks ties by insertion order, whatever the ids', async () => {
        for (const id of ['sync_b', 'sync_c', 'sync_a']) {
          await h.syncs.create({ id, communityId: A, format: 'csv', startedAt: STARTED })
          await h.syncs.accept(id, totals, STARTED)
        }
        expect((await h.syncs.recent(A, 10)).map((s) => s.id)).toEqual(['sync_a', 'sync_c', 'sync_b'])
      })

      it('remembers a community’s column mapping, replaced by the next one, never read by another community', async () => {
        expect(await h.syncs.columnMapping(A)).toBeUndefined()
        await h.syncs.saveColumnMapping(A, '{"Company":"mk_company"}', STARTED)
        await h.syncs.saveColumnMapping(B, '{"Company":null}', STARTED)
        expect(await h.syncs.columnMapping(A)).toBe('{"Company":"mk_company"}')
        await h.syncs.saveColumnMapping(A, '{"Company":"mk_employer"}', STARTED + 1)
        expect(await h.syncs.columnMapping(A)).toBe('{"Company":"mk_employer"}')
        expect(await h.syncs.columnMapping(B)).toBe('{"Company":null}')
        expect(await h.syncs.columnMapping('c_other')).toBeUndefined()
      })
    })
  })
})
