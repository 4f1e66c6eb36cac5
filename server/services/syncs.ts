/**
 * Initial syncs: a community's existing members brought over to Kit from a file. Each member
 * becomes an ordinary delivery of a `member.snapshot` event, through the same durable queue,
 * budget, ordering guard and Activity as live events, claimed after them. The file is read as it
 * streams in; its deliveries wait (held) until the whole file is accepted, so a refused file
 * leaves nothing behind. A dry run plans instead, from what the plugin last wrote to Kit.
 */
import { randomUUID } from 'node:crypto'
import type { Sync, SyncList, SyncPlan, SyncRefusedRow, SyncStatus } from '#shared/api.ts'
import type { RequestBudget } from '../kit/budget.ts'
import { isOAuthCredentialId } from '../kit/client.ts'
import { AppError } from '../lib/errors.ts'
import { newDeliveryId } from '../core/ids.ts'
import { ColumnResolver, parseColumnMapping, storedColumnMapping } from '../pipeline/sync-columns.ts'
import { readMemberFile } from '../pipeline/sync-file.ts'
import { isRefused, snapshotEvent, SyncInputError, type SnapshotMember, type SyncFormat } from '../pipeline/sync-input.ts'
import { SyncPlanner, type KnownSubscriber } from '../pipeline/sync-plan.ts'
import { SNAPSHOT_TYPE } from '../core/snapshot.ts'
import type { ConsentSource } from '../core/ports.ts'
import type { StagedSnapshot, SubscriberRepository, SyncRecord, SyncRepository } from '../core/storage.ts'
import type { ConnectionService } from './connections.ts'
import type { MappingService } from './mappings.ts'
import { iso } from '../core/time.ts'

const BATCH = 500
const REFUSED_KEPT = 20
const RECENT = 20

export interface SyncLimits {
  maxBytes: number
  maxRows: number
}

export interface SyncServiceDeps {
  syncs: SyncRepository
  subscribers: SubscriberRepository
  connections: ConnectionService
  mappings: MappingService
  /** The community's consent setting: a preview leaves out whom deliveries would leave out. */
  consent: ConsentSource
  budget: RequestBudget
  limits: SyncLimits
  /** New work is queued (or resumed): wake the consumer. */
  notify: () => void
  now?: () => number
}

type SyncRow = SyncRecord

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
  /**
   * The `columns` query parameter as sent (JSON: file column → member field or null), or null:
   * then the community's remembered mapping, else same-named columns.
   */
  columns: string | null
}

const MiB = 1024 * 1024
const describeBytes = (bytes: number) => (bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} bytes`)

export class SyncService {
  private readonly now: () => number

  constructor(private readonly deps: SyncServiceDeps) {
    this.now = deps.now ?? Date.now
  }

  private tooLarge(): string {
    const { maxBytes } = this.deps.limits
    return `The member file is larger than ${describeBytes(maxBytes)} (SYNC_MAX_BYTES), the most one sync accepts. Split it into several files and send them one after the other; nothing was queued.`
  }

  private tooManyRows(): string {
    return `The member file has more than ${this.deps.limits.maxRows.toLocaleString('en-US')} members (SYNC_MAX_ROWS), the most one sync accepts. Split it into several files; nothing was queued.`
  }

  /** Background requests per window of the credential's budget: what a sync can use at most. */
  private backgroundRate(credentialId: string): { requestsPerWindow: number; windowMs: number } {
    const { limit, interactiveReserve, windowMs } = this.deps.budget.rateOf(credentialId)
    return { requestsPerWindow: Math.max(1, limit - interactiveReserve), windowMs }
  }

  /** Reads the file; plans it (dry run) or queues it. Refuses the whole file on a line it cannot read. */
  async start(request: ImportRequest): Promise<SyncPlan | Sync> {
    const { communityId, dryRun } = request
    if (request.contentLength !== null && request.contentLength > this.deps.limits.maxBytes) {
      throw new AppError(413, 'payload_too_large', this.tooLarge())
    }
    const credential = await this.deps.connections.credential(communityId)
    if (!credential) throw new AppError(409, 'not_connected', 'Connect a Kit account under Connection before bringing members over.')
    try {
      const columns = new ColumnResolver(
        request.columns === null ? null : parseColumnMapping(request.columns),
        storedColumnMapping(await this.deps.syncs.columnMapping(communityId)),
      )
      return dryRun ? await this.plan(request, columns, credential.credentialId) : await this.queue(request, columns)
    } catch (err) {
      if (err instanceof SyncInputError)
        throw new AppError(err.status, err.code, err.message, {}, err.columns ? { columns: err.columns } : undefined)
      throw err
    }
  }

  /** The file's members, judged the same way for a dry run and an import. */
  private members(request: ImportRequest, columns: ColumnResolver) {
    const { maxBytes, maxRows } = this.deps.limits
    return readMemberFile({
      format: request.format,
      body: request.body,
      columns,
      maxBytes,
      maxRows,
      tooLarge: this.tooLarge(),
      tooManyRows: this.tooManyRows(),
    })
  }

  private async plan(request: ImportRequest, columns: ColumnResolver, credentialId: string): Promise<SyncPlan> {
    const { communityId } = request
    const mappings = await this.deps.mappings.get(communityId)
    const planner = new SyncPlanner(
      mappings,
      this.backgroundRate(credentialId),
      await this.deps.consent.consentMode(communityId),
      isOAuthCredentialId(credentialId),
    )
    const time = this.now()
    for await (const checked of this.members(request, columns)) {
      if (isRefused(checked)) {
        planner.refuse(checked)
        continue
      }
      const event = snapshotEvent(checked, { id: 'plan', communityId, time, syncId: null })
      planner.add(event, await this.known(communityId, credentialId, checked.memberId))
    }
    return planner.result(request.format, columns.columns())
  }

  private async known(communityId: string, credentialId: string, memberId: string): Promise<KnownSubscriber | null> {
    const row = await this.deps.subscribers.get({ communityId, credentialId, memberId })
    return row ? { email: row.email, firstName: row.firstName, fields: JSON.parse(row.fields) as Record<string, string | null> } : null
  }

  /**
   * Stores every member as a held delivery while the file streams in, in batches; once the whole
   * file is read and accepted, one synced commit lets them all go. A refused file, or a process
   * that dies before the end, leaves nothing (see recoverInterrupted).
   */
  private async queue(request: ImportRequest, columns: ColumnResolver): Promise<Sync> {
    const { communityId, format } = request
    const startedAt = this.now()
    // Time first, so ids sort by start where two syncs share a millisecond.
    const id = `sync_${startedAt.toString(36).padStart(9, '0')}${randomUUID().replace(/-/g, '').slice(0, 20)}`
    await this.deps.syncs.create({ id, communityId, format, startedAt })
    const refusedRows: SyncRefusedRow[] = []
    let refused = 0
    let total = 0
    let batch: SnapshotMember[] = []
    const sync = { id, communityId, startedAt, eventType: SNAPSHOT_TYPE, heldReason: 'sync_importing' as const }
    const flush = (members: SnapshotMember[]) =>
      this.deps.syncs.stage(
        sync,
        members.map((m) => this.staged(sync, m)),
      )
    try {
      for await (const checked of this.members(request, columns)) {
        if (isRefused(checked)) {
          refused += 1
          if (refusedRows.length < REFUSED_KEPT) refusedRows.push(checked)
          continue
        }
        total += 1
        batch.push(checked)
        if (batch.length >= BATCH) {
          await flush(batch)
          batch = []
        }
      }
      if (batch.length > 0) await flush(batch)
    } catch (err) {
      await this.deps.syncs.discard(id)
      throw err
    }
    const now = this.now()
    // An accepted sync must survive a power cut, like an accepted event: this commit is durable.
    await this.deps.syncs.accept(id, { total, refused, refusedExamples: JSON.stringify(refusedRows) }, now)
    // No member to send: the sync is done as it starts (otherwise its last delivery settling finishes it).
    if (total === 0) await this.deps.syncs.finish(id, 'completed', { done: 0, failed: 0, skipped: 0, kitRequests: 0 }, now)
    // The mapping this import used is the one the next file of the community starts from.
    await this.deps.syncs.saveColumnMapping(communityId, JSON.stringify(columns.toRemember()), now)
    this.deps.notify()
    return this.get(communityId, id)
  }

  private staged(sync: { id: string; communityId: string; startedAt: number }, member: SnapshotMember): StagedSnapshot {
    const eventId = `${sync.id}_${member.line}`
    const event = snapshotEvent(member, { id: eventId, communityId: sync.communityId, time: sync.startedAt, syncId: sync.id })
    return { deliveryId: newDeliveryId(), eventId, memberId: member.memberId, memberEmail: member.email, payload: JSON.stringify(event) }
  }

  /**
   * At start: files whose upload a previous process never finished reading are dropped. On a
   * shared database another instance may be reading one right now: only those older than
   * `liveImportMs` (longer than any upload may take) are dropped there.
   */
  async recoverInterrupted(liveImportMs = 0): Promise<number> {
    // `+ 1`: with no live imports to spare, one that started in this very millisecond is dropped too.
    const ids = await this.deps.syncs.importing(this.now() - liveImportMs + 1)
    for (const id of ids) await this.deps.syncs.discard(id)
    return ids.length
  }

  private async row(communityId: string, id: string): Promise<SyncRow> {
    const row = await this.deps.syncs.get(communityId, id)
    if (!row || row.status === 'importing') throw new AppError(404, 'not_found', `There is no sync ${id} in this community.`)
    return row
  }

  private async progress(row: SyncRow): Promise<Progress> {
    if (row.finished_at !== null) {
      return { done: row.done ?? 0, failed: row.failed ?? 0, skipped: row.skipped ?? 0, remaining: 0, kitRequests: row.kit_requests ?? 0 }
    }
    const p: Progress = { done: 0, failed: 0, skipped: 0, remaining: 0, kitRequests: 0 }
    for (const r of await this.deps.syncs.progress(row.id)) {
      p.kitRequests += r.k
      if (r.status === 'succeeded') p.done += r.n
      else if (r.status === 'failed') p.failed += r.n
      else if (r.status === 'skipped') p.skipped += r.n
      else p.remaining += r.n
    }
    return p
  }

  /** Reads only: a sync is recorded as finished by storage, when its last delivery settles. */
  private async toDto(row: SyncRow): Promise<Sync> {
    const p = await this.progress(row)
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
      estimated_seconds_left: row.status === 'running' ? await this.secondsLeft(row.community_id, p) : null,
      finished_at: row.finished_at === null ? null : iso(row.finished_at),
    }
  }

  /**
   * Time left at the credential's budget: the members still to do, times the Kit requests a member
   * has cost so far (one until something is known), over the requests a backlog may use per window.
   */
  private async secondsLeft(communityId: string, p: Progress): Promise<number> {
    const finished = p.done + p.failed + p.skipped
    const perMember = finished > 0 && p.kitRequests > 0 ? p.kitRequests / finished : 1
    const credentialId = (await this.deps.connections.credential(communityId))?.credentialId ?? ''
    const { requestsPerWindow, windowMs } = this.backgroundRate(credentialId)
    return Math.ceil(((p.remaining * perMember) / requestsPerWindow) * (windowMs / 1000))
  }

  async get(communityId: string, id: string): Promise<Sync> {
    return this.toDto(await this.row(communityId, id))
  }

  async list(communityId: string): Promise<SyncList> {
    const rows = await this.deps.syncs.recent(communityId, RECENT)
    const items: Sync[] = []
    for (const r of rows) items.push(await this.toDto(r))
    return { items }
  }

  /** Holds the sync's waiting deliveries; those already in flight finish. */
  async pause(communityId: string, id: string): Promise<Sync> {
    const row = await this.row(communityId, id)
    if (row.status !== 'running') throw this.cannot('pause', row.status)
    await this.deps.syncs.pause(id, 'sync_paused', this.now())
    return this.get(communityId, id)
  }

  async resume(communityId: string, id: string): Promise<Sync> {
    const row = await this.row(communityId, id)
    if (row.status !== 'paused') throw this.cannot('resume', row.status)
    await this.deps.syncs.resume(id, this.now())
    this.deps.notify()
    return this.get(communityId, id)
  }

  /** The sync's remaining deliveries become skipped ("sync cancelled"); those in flight finish. */
  async cancel(communityId: string, id: string): Promise<Sync> {
    const row = await this.row(communityId, id)
    if (row.status !== 'running' && row.status !== 'paused') throw this.cannot('cancel', row.status)
    await this.deps.syncs.cancel(id, 'sync_cancelled', this.now())
    return this.get(communityId, id)
  }

  private cannot(verb: string, status: SyncStatus): AppError {
    const hint =
      verb === 'resume'
        ? 'Only a paused sync can be resumed.'
        : `Only a running${verb === 'cancel' ? ' or paused' : ''} sync can be ${verb === 'pause' ? 'paused' : 'cancelled'}.`
    return new AppError(409, 'sync_not_' + (verb === 'resume' ? 'paused' : 'running'), `This sync is ${status}. ${hint}`)
  }
}
