/**
 * The dry run of a sync, as a pure function of the file's members, the community's mappings and
 * consent setting, and what the plugin last wrote to Kit for each member: it reads nothing and
 * writes nothing, and counts the plans of core/planner.ts, the ones the processor executes (a
 * member is "known in Kit" exactly when the processor finds them so: the plugin wrote them under
 * the saved key). Fed one member at a time, so a file of any size is planned as it streams in.
 */
import {
  DEFAULT_CONSENT_MODE,
  type ConsentMode,
  type Mappings,
  type SyncColumn,
  type SyncPlan,
  type SyncPlanChange,
  type SyncPlanCount,
  type SyncRefusedRow,
} from '#shared/api.ts'
import type { MemberEvent } from '../core/envelope.ts'
import { BULK_BATCH } from '../core/kit.ts'
import { deltaIsEmpty, fitsBulk, plan, plannedValues, removalsFor, subscriberDelta, type KnownSubscriber } from '../core/planner.ts'
import type { OrderingMark } from '../core/queue.ts'

export type { KnownSubscriber }

/** A preview plans each member as if no live event had been applied since. */
const NO_MARKS: ReadonlyMap<string, OrderingMark> = new Map()

export const PLAN_EXAMPLES = 5
export const PLAN_REFUSED_ROWS = 100

class Counter {
  count = 0
  readonly examples: string[] = []

  add(email: string): void {
    this.count += 1
    if (this.examples.length < PLAN_EXAMPLES) this.examples.push(email)
  }

  toDto(): SyncPlanCount {
    return { count: this.count, examples: [...this.examples] }
  }
}

class Changes {
  private readonly byName = new Map<string, Counter>()

  add(name: string, email: string): void {
    let counter = this.byName.get(name)
    if (!counter) {
      counter = new Counter()
      this.byName.set(name, counter)
    }
    counter.add(email)
  }

  /** Most members first, then by name. */
  toDto(): SyncPlanChange[] {
    return [...this.byName.entries()]
      .map(([name, c]) => ({ name, count: c.count, examples: [...c.examples] }))
      .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name))
  }
}

export interface PlanBudget {
  /** Kit requests per window a background backlog may use, and the window. */
  requestsPerWindow: number
  windowMs: number
}

export class SyncPlanner {
  private rows = 0
  private accepted = 0
  private kitRequests = 0
  private readonly create = new Counter()
  private readonly update = new Counter()
  private readonly unchanged = new Counter()
  private readonly unsubscribed = new Counter()
  private readonly leftOutNoConsent = new Counter()
  private readonly tagsAdded = new Changes()
  private readonly tagsRemoved = new Changes()
  private readonly formsAdded = new Changes()
  private readonly sequencesAdded = new Changes()
  private readonly refusedRows: SyncRefusedRow[] = []
  private refused = 0
  /** Items of each bulk request kind, counted when the connection sends in bulk batches. */
  private readonly bulkItems = { members: 0, fields: 0, tagsAdded: 0, tagsRemoved: 0, forms: 0 }

  constructor(
    private readonly mappings: Mappings,
    private readonly budget: PlanBudget,
    private readonly consentMode: ConsentMode = DEFAULT_CONSENT_MODE,
    /** The connection sends members in bulk batches (Connect with Kit): requests are counted per batch. */
    private readonly bulk = false,
  ) {}

  refuse(row: SyncRefusedRow): void {
    this.rows += 1
    this.refused += 1
    if (this.refusedRows.length < PLAN_REFUSED_ROWS) this.refusedRows.push(row)
  }

  /**
   * One member's snapshot and what the plugin knows of them (null: never written), counted from
   * the plan the processor would execute for it.
   */
  add(event: MemberEvent, known: KnownSubscriber | null): void {
    this.rows += 1
    this.accepted += 1
    const email = event.data.member.email
    const planned = plan({
      event,
      memberId: event.data.member.id,
      eventTime: 0,
      eventId: event.id,
      credential: 'connected',
      mappings: this.mappings,
      marks: NO_MARKS,
      consentMode: this.consentMode,
      knownInKit: known !== null,
    })
    if (planned.kind === 'skip' && planned.reason === 'no_consent') {
      this.leftOutNoConsent.add(email)
      return
    }
    if (planned.kind !== 'send') {
      this.unchanged.add(email)
      return
    }
    const want = planned.subscriber
    // The bulk sender carries this member in a batch: its items are counted, and the batch's
    // requests once for all (see result); otherwise each request below is counted.
    const batched = this.bulk && fitsBulk(planned, known?.email ?? null)
    const values = plannedValues(want.fields)
    const delta = known === null ? null : subscriberDelta(known, { ...want, fields: values })
    if (known === null && !want.createIfMissing) {
      // Nobody is created (consent withdrawn): the processor looks the address up in Kit and
      // unsubscribes whoever Kit lists there; their profile is not written.
      this.unchanged.add(email)
      this.kitRequests += 1
    } else if (delta === null) {
      this.create.add(email)
      if (!batched) this.kitRequests += 1
    } else if (deltaIsEmpty(delta)) {
      this.unchanged.add(email)
    } else {
      this.update.add(email)
      if (!batched) this.kitRequests += 1
    }
    if (batched) {
      this.bulkItems.members += 1
      this.bulkItems.fields += Object.keys(delta === null ? values : delta.fields).length
      // Removals go to everyone in a batch (a bulk answer does not say who is new).
      for (const step of planned.steps) {
        if (step.kind === 'tag.add') this.bulkItems.tagsAdded += 1
        else if (step.kind === 'tag.remove') this.bulkItems.tagsRemoved += 1
        else if (step.kind === 'form.add') this.bulkItems.forms += 1
      }
    }
    // A member new in Kit has no tags to remove: the processor sends no removal to a subscriber it creates.
    for (const step of removalsFor(planned.steps, known === null && want.createIfMissing)) {
      if (!batched) this.kitRequests += 1
      if (step.kind === 'tag.remove') this.tagsRemoved.add(step.tag.name, email)
      else if (step.kind === 'tag.add') this.tagsAdded.add(step.tag.name, email)
      else if (step.kind === 'form.add') this.formsAdded.add(step.form.name, email)
      else if (step.kind === 'sequence.add') this.sequencesAdded.add(step.sequence.name, email)
      else this.unsubscribed.add(email)
    }
  }

  result(format: 'csv' | 'jsonl', columns: SyncColumn[]): SyncPlan {
    const { requestsPerWindow, windowMs } = this.budget
    const requests = this.kitRequests + Object.values(this.bulkItems).reduce((n, items) => n + Math.ceil(items / BULK_BATCH), 0)
    return {
      dry_run: true,
      format,
      rows: this.rows,
      accepted: this.accepted,
      subscribers: { create: this.create.toDto(), update: this.update.toDto(), unchanged: this.unchanged.toDto() },
      tags_added: this.tagsAdded.toDto(),
      tags_removed: this.tagsRemoved.toDto(),
      forms_added: this.formsAdded.toDto(),
      sequences_added: this.sequencesAdded.toDto(),
      unsubscribed: this.unsubscribed.toDto(),
      left_out_no_consent: this.leftOutNoConsent.toDto(),
      refused: this.refused,
      refused_rows: [...this.refusedRows],
      columns: columns.map((c) => ({ ...c })),
      estimated_kit_requests: requests,
      estimated_seconds: Math.ceil(((requests / requestsPerWindow) * windowMs) / 1000),
    }
  }
}

/** A whole plan at once: each entry is a member with what the plugin knows of them, or a refused row. */
export function planSync(
  entries: Iterable<{ event: MemberEvent; known: KnownSubscriber | null } | { refused: SyncRefusedRow }>,
  mappings: Mappings,
  budget: PlanBudget,
  format: 'csv' | 'jsonl' = 'csv',
  columns: SyncColumn[] = [],
  consentMode: ConsentMode = DEFAULT_CONSENT_MODE,
  bulk = false,
): SyncPlan {
  const planner = new SyncPlanner(mappings, budget, consentMode, bulk)
  for (const entry of entries) {
    if ('refused' in entry) planner.refuse(entry.refused)
    else planner.add(entry.event, entry.known)
  }
  return planner.result(format, columns)
}
