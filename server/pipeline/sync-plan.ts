/**
 * The dry run of a sync, as a pure function of the file's members, the community's mappings and
 * what the plugin last wrote to Kit for each member: it reads nothing and writes nothing. Fed one
 * member at a time, so a file of any size is planned as it streams in.
 */
import type { Mappings, SyncColumn, SyncPlan, SyncPlanChange, SyncPlanCount, SyncRefusedRow } from '#shared/api.ts'
import type { MemberEvent } from '../core/envelope.ts'
import { fillTemplate, mappedFields } from '../core/member-fields.ts'
import { tagRemovalsFor } from '../core/new-subscriber.ts'
import { snapshotMapping } from '../core/snapshot.ts'

/** What the plugin last wrote to Kit for a member (kit_subscribers). */
export interface KnownSubscriber {
  email: string
  firstName: string | null
  fields: Record<string, string | null>
}

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
  private readonly tagsAdded = new Changes()
  private readonly tagsRemoved = new Changes()
  private readonly formsAdded = new Changes()
  private readonly sequencesAdded = new Changes()
  private readonly refusedRows: SyncRefusedRow[] = []
  private refused = 0

  constructor(
    private readonly mappings: Mappings,
    private readonly budget: PlanBudget,
  ) {}

  refuse(row: SyncRefusedRow): void {
    this.rows += 1
    this.refused += 1
    if (this.refusedRows.length < PLAN_REFUSED_ROWS) this.refusedRows.push(row)
  }

  /** One member's snapshot and what the plugin knows of them (null: never written). */
  add(event: MemberEvent, known: KnownSubscriber | null): void {
    this.rows += 1
    this.accepted += 1
    const email = event.data.member.email
    const fields = Object.values(mappedFields(this.mappings, event))
    if (known === null) {
      this.create.add(email)
      this.kitRequests += 1
    } else {
      const firstName = event.data.member.first_name ?? null
      const changed =
        known.email !== email ||
        (firstName !== null && firstName !== known.firstName) ||
        fields.some((f) => (known.fields[f.key] ?? '') !== f.value)
      if (changed) {
        this.update.add(email)
        this.kitRequests += 1
      } else this.unchanged.add(email)
    }
    const mapping = snapshotMapping(this.mappings, event)
    // A member new in Kit has no tags to remove: the processor sends no removal to a subscriber it creates.
    for (const ref of tagRemovalsFor(mapping.remove_tags, known === null)) {
      const name = fillTemplate(ref.name, event)
      if (!name) continue
      this.tagsRemoved.add(name, email)
      this.kitRequests += 1
    }
    for (const ref of mapping.add_tags) {
      const name = fillTemplate(ref.name, event)
      if (!name) continue
      this.tagsAdded.add(name, email)
      this.kitRequests += 1
    }
    for (const form of mapping.add_to_forms) {
      this.formsAdded.add(form.name, email)
      this.kitRequests += 1
    }
    for (const sequence of mapping.add_to_sequences) {
      this.sequencesAdded.add(sequence.name, email)
      this.kitRequests += 1
    }
    if (mapping.unsubscribe) {
      this.unsubscribed.add(email)
      this.kitRequests += 1
    }
  }

  result(format: 'csv' | 'jsonl', columns: SyncColumn[]): SyncPlan {
    const { requestsPerWindow, windowMs } = this.budget
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
      refused: this.refused,
      refused_rows: [...this.refusedRows],
      columns: columns.map((c) => ({ ...c })),
      estimated_kit_requests: this.kitRequests,
      estimated_seconds: Math.ceil(((this.kitRequests / requestsPerWindow) * windowMs) / 1000),
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
): SyncPlan {
  const planner = new SyncPlanner(mappings, budget)
  for (const entry of entries) {
    if ('refused' in entry) planner.refuse(entry.refused)
    else planner.add(entry.event, entry.known)
  }
  return planner.result(format, columns)
}
