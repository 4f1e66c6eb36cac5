/**
 * Initial syncs: a community's existing members brought over to Kit from a file. Each member
 * becomes an ordinary delivery of a `member.snapshot` event, through the same durable queue,
 * budget, ordering guard and Activity as live events, claimed after them. The file is read as it
 * streams in; its deliveries wait (held) until the whole file is accepted, so a refused file
 * leaves nothing behind. A dry run plans instead, from what the plugin last wrote to Kit.
 */
import type Database from 'better-sqlite3'
import { randomUUID } from 'node:crypto'
import type { Sync, SyncList, SyncPlan, SyncRefusedRow, SyncStatus } from '#shared/api.ts'
import type { RequestBudget } from '../kit/budget.ts'
import { AppError } from '../lib/errors.ts'
import { newDeliveryId } from '../storage/sqlite/queue.ts'
import {
  isRefused,
  readLines,
  readRows,
  RowChecker,
  snapshotEvent,
  SyncInputError,
  type SnapshotMember,
  type SyncFormat,
} from '../pipeline/sync-input.ts'
import { SyncPlanner, type KnownSubscriber } from '../pipeline/sync-plan.ts'
import { SNAPSHOT_PRIORITY, SNAPSHOT_TYPE } from '../pipeline/sync-snapshot.ts'
import type { ConnectionService } from './connections.ts'
import type { MappingService } from './mappings.ts'

const iso = (ms: number) => new Date(ms).toISOString()
const BATCH = 500
const REFUSED_KEPT = 20
const RECENT = 20

export const IMPORTING_HELD = 'Waiting: the sync is still reading its member file.'
export const PAUSED_HELD = 'Paused: the initial sync was paused. Resume it under Bring existing members and this delivery continues.'
export const CANCELLED_SKIP = 'Sync cancelled: the initial sync was cancelled before this member was sent to Kit.'

export interface SyncLimits {
  maxBytes: number
  maxRows: number
}

export interface SyncServiceDeps {
  sqlite: Database.Database
  connections: ConnectionService
  mappings: MappingService
  budget: RequestBudget
  limits: SyncLimits
  /** New work is queued (or resumed): wake the consumer. */
  notify: () => void
  now?: () => number
}

interface SyncRow {
  id: string
  community_id: string
  status: SyncStatus
  format: SyncFormat
  started_at: number
  total: number
  refused: number
  refused_examples: string
  done: number | null
  failed: number | null
  skipped: number | null
  kit_requests: number | null
  finished_at: number | null
}

interface Progress {
  done: number
  failed: number
  skipped: number
  remaining: number
  kitRequests: number
}

export interface ImportRequest {
  communityId: string
  format: SyncFormat
  body: AsyncIterable<Buffer | string>
  /** The Content-Length header, when the client sent one. */
  contentLength: number | null
  dryRun: boolean
}

const emptyFile = () =>
  new SyncInputError(400, 'empty_file', 'The member file holds no members: a CSV needs a header line (email,member_id,…) and one member a line below it.')

const MiB = 1024 * 1024
const describeBytes = (bytes: number) => (bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} bytes`)

export class SyncService {
  private readonly now: () => number
  private readonly insertEvent: Database.Statement
  private readonly insertDelivery: Database.Statement
  private readonly knownStmt: Database.Statement
  private readonly progressStmt: Database.Statement

  constructor(private readonly deps: SyncServiceDeps) {
    this.now = deps.now ?? Date.now
    const { sqlite } = deps
    this.insertEvent = sqlite.prepare(
      `INSERT INTO events (community_id, id, type, member_id, member_email, event_time, payload, received_at)
       VALUES (@communityId, @eventId, @eventType, @memberId, @memberEmail, @eventTime, @payload, @receivedAt)`,
    )
    this.insertDelivery = sqlite.prepare(
      `INSERT INTO deliveries (id, community_id, event_id, event_type, member_id, member_email, event_time, status,
         last_error, next_attempt_at, received_at, created_at, updated_at, priority, sync_id)
       VALUES (@id, @communityId, @eventId, @eventType, @memberId, @memberEmail, @eventTime, 'held',
         @lastError, @receivedAt, @receivedAt, @createdAt, @createdAt, @priority, @syncId)`,
    )
    this.knownStmt = sqlite.prepare(
      `SELECT email, first_name AS firstName, fields FROM kit_subscribers
        WHERE community_id = ? AND credential_id = ? AND member_id = ?`,
    )
    this.progressStmt = sqlite.prepare(
      `SELECT status, count(*) AS n, coalesce(sum(kit_requests), 0) AS k FROM deliveries WHERE sync_id = ? GROUP BY status`,
    )
  }

  private tooLarge(): string {
    const { maxBytes } = this.deps.limits
    return `The member file is larger than ${describeBytes(maxBytes)} (SYNC_MAX_BYTES), the most one sync accepts. Split it into several files and send them one after the other; nothing was queued.`
  }

  private tooManyRows(): string {
    return `The member file has more than ${this.deps.limits.maxRows.toLocaleString('en-US')} members (SYNC_MAX_ROWS), the most one sync accepts. Split it into several files; nothing was queued.`
  }

  /** Background requests per window of the credential's budget: what a sync can use at most. */
  private backgroundRate(): { requestsPerWindow: number; windowMs: number } {
    const { limit, interactiveReserve, windowMs } = this.deps.budget
    return { requestsPerWindow: Math.max(1, limit - interactiveReserve), windowMs }
  }

  /** Reads the file; plans it (dry run) or queues it. Refuses the whole file on a line it cannot read. */
  async start(request: ImportRequest): Promise<SyncPlan | Sync> {
    const { communityId, dryRun } = request
    if (request.contentLength !== null && request.contentLength > this.deps.limits.maxBytes) {
      throw new AppError(413, 'payload_too_large', this.tooLarge())
    }
    const credential = this.deps.connections.credential(communityId)
    if (!credential) throw new AppError(409, 'not_connected', 'Connect a Kit account under Connection before bringing members over.')
    try {
      return dryRun
        ? await this.plan(request, credential.credentialId)
        : await this.queue(request)
    } catch (err) {
      if (err instanceof SyncInputError) throw new AppError(err.status, err.code, err.message)
      throw err
    }
  }

  private rows(request: ImportRequest, onUnknownColumn: (column: string, line: number) => void) {
    return readRows(readLines(request.body, this.deps.limits.maxBytes, this.tooLarge()), request.format, onUnknownColumn)
  }

  private async plan(request: ImportRequest, credentialId: string): Promise<SyncPlan> {
    const planner = new SyncPlanner(this.deps.mappings.get(request.communityId), this.backgroundRate())
    const checker = new RowChecker()
    const time = this.now()
    let rows = 0
    for await (const row of this.rows(request, (column) => planner.unknownColumn(column))) {
      if (++rows > this.deps.limits.maxRows) throw new SyncInputError(413, 'payload_too_large', this.tooManyRows())
      const checked = checker.check(row)
      if (isRefused(checked)) {
        planner.refuse(checked)
        continue
      }
      const event = snapshotEvent(checked, { id: 'plan', communityId: request.communityId, time, syncId: null })
      planner.add(event, this.known(request.communityId, credentialId, checked.memberId))
    }
    if (rows === 0) throw emptyFile()
    return planner.result(request.format)
  }

  private known(communityId: string, credentialId: string, memberId: string): KnownSubscriber | null {
    const row = this.knownStmt.get(communityId, credentialId, memberId) as { email: string; firstName: string | null; fields: string } | undefined
    return row ? { email: row.email, firstName: row.firstName, fields: JSON.parse(row.fields) as Record<string, string | null> } : null
  }

  /**
   * Stores every member as a held delivery while the file streams in, in batches; once the whole
   * file is read and accepted, one synced commit lets them all go. A refused file, or a process
   * that dies before the end, leaves nothing (see recoverInterrupted).
   */
  private async queue(request: ImportRequest): Promise<Sync> {
    const { communityId, format } = request
    const id = `sync_${randomUUID().replace(/-/g, '')}`
    const startedAt = this.now()
    this.deps.sqlite
      .prepare(`INSERT INTO syncs (id, community_id, status, format, started_at, updated_at) VALUES (?, ?, 'importing', ?, ?, ?)`)
      .run(id, communityId, format, startedAt, startedAt)
    const checker = new RowChecker()
    const refusedRows: SyncRefusedRow[] = []
    let refused = 0
    let total = 0
    let rows = 0
    let batch: SnapshotMember[] = []
    const flush = this.deps.sqlite.transaction((members: SnapshotMember[]) => {
      for (const m of members) this.stage(id, communityId, startedAt, m)
    })
    try {
      for await (const row of this.rows(request, (column, line) => {
        throw new SyncInputError(
          400,
          'unknown_column',
          `Line ${line}: the column "${column}" is not one a sync knows (email, member_id, first_name, subscription_plan, access_level, subscription_status, mk_…). Rename or remove it and send the file again; nothing was queued. A dry run lists every unknown column.`,
        )
      })) {
        if (++rows > this.deps.limits.maxRows) throw new SyncInputError(413, 'payload_too_large', this.tooManyRows())
        const checked = checker.check(row)
        if (isRefused(checked)) {
          refused += 1
          if (refusedRows.length < REFUSED_KEPT) refusedRows.push(checked)
          continue
        }
        total += 1
        batch.push(checked)
        if (batch.length >= BATCH) {
          flush(batch)
          batch = []
        }
      }
      flush(batch)
      if (rows === 0) throw emptyFile()
    } catch (err) {
      this.discard(id)
      throw err
    }
    const now = this.now()
    const release = this.deps.sqlite.transaction(() => {
      this.deps.sqlite
        .prepare(`UPDATE deliveries SET status = 'pending', last_error = NULL, next_attempt_at = ? WHERE sync_id = ? AND status = 'held'`)
        .run(now, id)
      this.deps.sqlite
        .prepare(
          `UPDATE syncs SET status = 'running', total = ?, refused = ?, refused_examples = ?, updated_at = ? WHERE id = ?`,
        )
        .run(total, refused, JSON.stringify(refusedRows), now, id)
    })
    try {
      // An accepted sync must survive a power cut, like an accepted event: this commit syncs the WAL.
      this.deps.sqlite.pragma('synchronous = FULL')
      release()
    } finally {
      this.deps.sqlite.pragma('synchronous = NORMAL')
    }
    this.deps.notify()
    return this.get(communityId, id)
  }

  private stage(syncId: string, communityId: string, startedAt: number, member: SnapshotMember): void {
    const eventId = `${syncId}_${member.line}`
    const event = snapshotEvent(member, { id: eventId, communityId, time: startedAt, syncId })
    const common = { communityId, eventId, eventType: SNAPSHOT_TYPE, memberId: member.memberId, memberEmail: member.email, eventTime: startedAt, receivedAt: startedAt }
    this.insertEvent.run({ ...common, payload: JSON.stringify(event) })
    this.insertDelivery.run({
      ...common,
      id: newDeliveryId(),
      lastError: IMPORTING_HELD,
      createdAt: iso(startedAt),
      priority: SNAPSHOT_PRIORITY,
      syncId,
    })
  }

  /** Deletes a sync that was never accepted, with its events and deliveries. */
  private discard(syncId: string): void {
    this.deps.sqlite.transaction(() => {
      this.deps.sqlite
        .prepare(`DELETE FROM events WHERE (community_id, id) IN (SELECT community_id, event_id FROM deliveries WHERE sync_id = ?)`)
        .run(syncId)
      this.deps.sqlite.prepare('DELETE FROM deliveries WHERE sync_id = ?').run(syncId)
      this.deps.sqlite.prepare('DELETE FROM syncs WHERE id = ?').run(syncId)
    })()
  }

  /** At start: files whose upload a previous process never finished reading are dropped. */
  recoverInterrupted(): number {
    const ids = this.deps.sqlite.prepare(`SELECT id FROM syncs WHERE status = 'importing'`).all() as { id: string }[]
    for (const { id } of ids) this.discard(id)
    return ids.length
  }

  private row(communityId: string, id: string): SyncRow {
    const row = this.deps.sqlite.prepare('SELECT * FROM syncs WHERE community_id = ? AND id = ?').get(communityId, id) as SyncRow | undefined
    if (!row || row.status === 'importing') throw new AppError(404, 'not_found', `There is no sync ${id} in this community.`)
    return row
  }

  private progress(row: SyncRow): Progress {
    if (row.finished_at !== null) {
      return { done: row.done ?? 0, failed: row.failed ?? 0, skipped: row.skipped ?? 0, remaining: 0, kitRequests: row.kit_requests ?? 0 }
    }
    const p: Progress = { done: 0, failed: 0, skipped: 0, remaining: 0, kitRequests: 0 }
    for (const r of this.progressStmt.all(row.id) as { status: string; n: number; k: number }[]) {
      p.kitRequests += r.k
      if (r.status === 'succeeded') p.done += r.n
      else if (r.status === 'failed') p.failed += r.n
      else if (r.status === 'skipped') p.skipped += r.n
      else p.remaining += r.n
    }
    return p
  }

  /** A running or cancelled sync with nothing left to do is finished: its counts are kept. */
  private settle(row: SyncRow, p: Progress): SyncRow {
    if (row.finished_at !== null || p.remaining > 0 || row.status === 'paused') return row
    const now = this.now()
    const status: SyncStatus = row.status === 'cancelled' ? 'cancelled' : 'completed'
    this.deps.sqlite
      .prepare(`UPDATE syncs SET status = ?, done = ?, failed = ?, skipped = ?, kit_requests = ?, finished_at = ?, updated_at = ? WHERE id = ?`)
      .run(status, p.done, p.failed, p.skipped, p.kitRequests, now, now, row.id)
    return { ...row, status, done: p.done, failed: p.failed, skipped: p.skipped, kit_requests: p.kitRequests, finished_at: now }
  }

  private toDto(stored: SyncRow): Sync {
    const p = this.progress(stored)
    const row = this.settle(stored, p)
    return {
      id: row.id,
      status: row.status,
      format: row.format,
      started_at: iso(row.started_at),
      total: row.total,
      done: p.done,
      failed: p.failed,
      skipped: p.skipped,
      remaining: p.remaining,
      refused: row.refused,
      refused_rows: JSON.parse(row.refused_examples) as SyncRefusedRow[],
      kit_requests: p.kitRequests,
      estimated_seconds_left: row.status === 'running' ? this.secondsLeft(p) : null,
      finished_at: row.finished_at === null ? null : iso(row.finished_at),
    }
  }

  /**
   * Time left at the credential's budget: the members still to do, times the Kit requests a member
   * has cost so far (one until something is known), over the requests a backlog may use per window.
   */
  private secondsLeft(p: Progress): number {
    const finished = p.done + p.failed + p.skipped
    const perMember = finished > 0 && p.kitRequests > 0 ? p.kitRequests / finished : 1
    const { requestsPerWindow, windowMs } = this.backgroundRate()
    return Math.ceil(((p.remaining * perMember) / requestsPerWindow) * (windowMs / 1000))
  }

  get(communityId: string, id: string): Sync {
    return this.toDto(this.row(communityId, id))
  }

  list(communityId: string): SyncList {
    const rows = this.deps.sqlite
      .prepare(`SELECT * FROM syncs WHERE community_id = ? AND status <> 'importing' ORDER BY started_at DESC, rowid DESC LIMIT ?`)
      .all(communityId, RECENT) as SyncRow[]
    return { items: rows.map((r) => this.toDto(r)) }
  }

  /** Holds the sync's waiting deliveries; those already in flight finish. */
  pause(communityId: string, id: string): Sync {
    const row = this.row(communityId, id)
    if (row.status !== 'running') throw this.cannot('pause', row.status)
    const now = this.now()
    this.deps.sqlite.transaction(() => {
      this.deps.sqlite
        .prepare(
          `UPDATE deliveries SET status = 'held', last_error = ?, updated_at = ?
            WHERE sync_id = ? AND status IN ('pending', 'retrying') AND (lease_until IS NULL OR lease_until < ?)`,
        )
        .run(PAUSED_HELD, iso(now), id, now)
      this.deps.sqlite.prepare(`UPDATE syncs SET status = 'paused', updated_at = ? WHERE id = ?`).run(now, id)
    })()
    return this.get(communityId, id)
  }

  resume(communityId: string, id: string): Sync {
    const row = this.row(communityId, id)
    if (row.status !== 'paused') throw this.cannot('resume', row.status)
    const now = this.now()
    this.deps.sqlite.transaction(() => {
      this.deps.sqlite
        .prepare(`UPDATE deliveries SET status = 'pending', last_error = NULL, next_attempt_at = ?, updated_at = ? WHERE sync_id = ? AND status = 'held'`)
        .run(now, iso(now), id)
      this.deps.sqlite.prepare(`UPDATE syncs SET status = 'running', updated_at = ? WHERE id = ?`).run(now, id)
    })()
    this.deps.notify()
    return this.get(communityId, id)
  }

  /** The sync's remaining deliveries become skipped ("sync cancelled"); those in flight finish. */
  cancel(communityId: string, id: string): Sync {
    const row = this.row(communityId, id)
    if (row.status !== 'running' && row.status !== 'paused') throw this.cannot('cancel', row.status)
    const now = this.now()
    this.deps.sqlite.transaction(() => {
      this.deps.sqlite
        .prepare(
          `UPDATE deliveries SET status = 'skipped', last_error = ?, updated_at = ?
            WHERE sync_id = ? AND status IN ('pending', 'retrying', 'held') AND (lease_until IS NULL OR lease_until < ?)`,
        )
        .run(CANCELLED_SKIP, iso(now), id, now)
      this.deps.sqlite.prepare(`UPDATE syncs SET status = 'cancelled', updated_at = ? WHERE id = ?`).run(now, id)
    })()
    return this.get(communityId, id)
  }

  private cannot(verb: string, status: SyncStatus): AppError {
    const hint = verb === 'resume' ? 'Only a paused sync can be resumed.' : `Only a running${verb === 'cancel' ? ' or paused' : ''} sync can be ${verb === 'pause' ? 'paused' : 'cancelled'}.`
    return new AppError(409, 'sync_not_' + (verb === 'resume' ? 'paused' : 'running'), `This sync is ${status}. ${hint}`)
  }
}
