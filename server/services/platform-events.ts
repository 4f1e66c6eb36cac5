/** The owner's view of the events told to the platform: a page of them, a summary of 30 days, and Retry for a failed one. */
import type { PlatformEvent, PlatformEventPage, PlatformEventState, PlatformEventSummary } from '#shared/platform-events.ts'
import { AppError } from '../lib/errors.ts'
import { GIVE_UP_AFTER_MS } from '../pipeline/platform-events.ts'
import type { PlatformEventRecord, PlatformOutbox } from '../core/storage.ts'
import { iso } from '../core/time.ts'

const SUMMARY_DAYS = 30

function toDto(r: PlatformEventRecord): PlatformEvent {
  const body = JSON.parse(r.body) as { data?: Record<string, unknown> }
  const data = body.data ?? {}
  const member = data.member as { id: string; email: string } | undefined
  return {
    id: r.id,
    type: r.type,
    state: r.state,
    attempts: r.attempts,
    last_error: r.lastError,
    member: member ? { id: member.id, email: member.email } : null,
    data,
    observed_at: iso(r.observedAt),
    created_at: iso(r.createdAt),
    sent_at: r.sentAt === null ? null : iso(r.sentAt),
    next_attempt_at: r.state === 'pending' ? iso(r.nextAttemptAt) : null,
  }
}

const encodeCursor = (seq: number) => Buffer.from(`p:${seq}`).toString('base64url')
function decodeCursor(cursor: string): number {
  const match = /^p:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (!match) throw new AppError(400, 'invalid_request', 'querystring.cursor is not a cursor this API gave out')
  return Number(match[1])
}

export class PlatformEventService {
  constructor(
    private readonly outbox: PlatformOutbox,
    private readonly configured: boolean,
    private readonly onRetry: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  async list(communityId: string, q: { status?: PlatformEventState; cursor?: string; limit?: number }): Promise<PlatformEventPage> {
    const limit = q.limit ?? 50
    const rows = await this.outbox.list(communityId, {
      ...(q.status ? { state: q.status } : {}),
      ...(q.cursor ? { beforeSeq: decodeCursor(q.cursor) } : {}),
      limit: limit + 1,
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return { items: page.map(toDto), next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null }
  }

  async summary(communityId: string): Promise<PlatformEventSummary> {
    const since = this.now() - SUMMARY_DAYS * 24 * 60 * 60_000
    return { configured: this.configured, since: iso(since), counts: await this.outbox.summary(communityId, since) }
  }

  /** A failed event goes back to the outbox under its own id, with another 72 hours of retries. */
  async retry(communityId: string, id: string): Promise<PlatformEvent> {
    const existing = await this.outbox.get(communityId, id)
    if (!existing) throw new AppError(404, 'not_found', 'No such platform event in this community')
    if (!this.configured)
      throw new AppError(
        409,
        'platform_events_not_configured',
        'Events to App Station are not configured on this server (PLATFORM_EVENTS_URL and PLATFORM_EVENTS_SECRET).',
      )
    const now = this.now()
    if (!(await this.outbox.retry(communityId, id, now, now + GIVE_UP_AFTER_MS))) {
      throw new AppError(409, 'not_retryable', 'Only failed platform events can be sent again')
    }
    this.onRetry()
    return toDto((await this.outbox.get(communityId, id)) as PlatformEventRecord)
  }
}
