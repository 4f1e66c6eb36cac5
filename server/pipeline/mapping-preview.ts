/**
 * The preview of a mappings draft, as a pure function: each held event is planned twice by
 * core/planner.ts — the one decision the processor executes — once with the saved document and
 * once with the draft, and what differs is counted per event type. It reads nothing, writes
 * nothing and never asks Kit.
 *
 * Every event is planned as if the community's key worked and no event had been applied before it
 * (no ordering marks): ordering is not simulated, so an event the pipeline skipped as stale is
 * planned like any other. Counted per event type (`member.snapshot`: the members from an import):
 * - `considered`: the events planned.
 * - `rules[i].matched`: events whose draft plan applies the draft's rule i — its conditions hold
 *   and the event is sent (the member filter does not leave it out).
 * - `left_out_by_filter`: events skipped as `filtered_out`, with the saved document and the draft.
 * - `newly_skipped` / `newly_sent`: events the saved plan sends and the draft's skips, and the
 *   other way round.
 * - `changes`, in distinct members, per tag (by its filled-in name, any case), form and sequence
 *   (by id). `gain`: members with an event whose draft plan adds it and whose saved plan does not.
 *   `lose`: members with an event whose saved plan adds it and whose draft plan does not, or whose
 *   draft plan removes a tag its saved plan does not remove. A member counts once in each, and may
 *   count in both (one event gains, another loses).
 */
import type { ConsentMode, Mappings, MappingPreview, MappingPreviewChange, MappingPreviewEvent } from '#shared/api.ts'
import { EVENT_TYPES, isEventType, type EventType } from '#shared/events.ts'
import type { MemberEvent } from '../core/envelope.ts'
import { plan, type Plan } from '../core/planner.ts'
import type { OrderingMark } from '../core/queue.ts'

/** The most events of one type a preview plans: that type's newest held ones. */
export const PREVIEW_EVENTS_PER_TYPE = 500

/** A held event: its envelope, whose it is and its time (epoch ms), as the queue recorded them. */
export interface PreviewEvent {
  event: MemberEvent
  memberId: string
  eventTime: number
}

export interface PreviewInput {
  events: Iterable<PreviewEvent>
  saved: Mappings
  draft: Mappings
  /** The community's consent setting (absent: the default, every member). */
  consentMode?: ConsentMode
}

const NO_MARKS: ReadonlyMap<string, OrderingMark> = new Map()

type Kind = MappingPreviewChange['kind']
interface Target {
  kind: Kind
  name: string
}

/** What a plan adds and removes, by key (`tag:<name, lower case>`, `form:<id>`, `sequence:<id>`). */
interface Effects {
  adds: Map<string, Target>
  removes: Map<string, Target>
}

const tagKey = (name: string) => `tag:${name.trim().toLowerCase()}`

function effectsOf(planned: Plan): Effects {
  const effects: Effects = { adds: new Map(), removes: new Map() }
  if (planned.kind !== 'send') return effects
  for (const step of planned.steps) {
    if (step.kind === 'tag.add') effects.adds.set(tagKey(step.tag.name), { kind: 'tag', name: step.tag.name })
    else if (step.kind === 'tag.remove') effects.removes.set(tagKey(step.tag.name), { kind: 'tag', name: step.tag.name })
    else if (step.kind === 'form.add') effects.adds.set(`form:${step.form.id}`, { kind: 'form', name: step.form.name })
    else if (step.kind === 'sequence.add') effects.adds.set(`sequence:${step.sequence.id}`, { kind: 'sequence', name: step.sequence.name })
  }
  return effects
}

interface Change extends Target {
  gain: Set<string>
  lose: Set<string>
}

const KIND_ORDER: Record<Kind, number> = { tag: 0, form: 1, sequence: 2 }

class TypeTally {
  considered = 0
  oldest = Number.POSITIVE_INFINITY
  readonly matched: number[]
  leftOutSaved = 0
  leftOutDraft = 0
  newlySkipped = 0
  newlySent = 0
  private readonly changes = new Map<string, Change>()

  constructor(
    readonly type: EventType,
    draftRules: number,
  ) {
    this.matched = Array.from({ length: draftRules }, () => 0)
  }

  add(memberId: string, eventTime: number, saved: Plan, draft: Plan): void {
    this.considered += 1
    this.oldest = Math.min(this.oldest, eventTime)
    if (saved.kind === 'skip' && saved.reason === 'filtered_out') this.leftOutSaved += 1
    if (draft.kind === 'skip' && draft.reason === 'filtered_out') this.leftOutDraft += 1
    if (saved.kind === 'send' && draft.kind !== 'send') this.newlySkipped += 1
    if (saved.kind !== 'send' && draft.kind === 'send') this.newlySent += 1
    if (draft.kind === 'send') {
      for (const i of draft.rules) if (i < this.matched.length) this.matched[i] = (this.matched[i] ?? 0) + 1
    }
    const before = effectsOf(saved)
    const after = effectsOf(draft)
    for (const [key, target] of after.adds) if (!before.adds.has(key)) this.change(key, target).gain.add(memberId)
    for (const [key, target] of before.adds) if (!after.adds.has(key)) this.change(key, target).lose.add(memberId)
    for (const [key, target] of after.removes) if (!before.removes.has(key)) this.change(key, target).lose.add(memberId)
  }

  private change(key: string, target: Target): Change {
    let change = this.changes.get(key)
    if (!change) {
      change = { ...target, gain: new Set(), lose: new Set() }
      this.changes.set(key, change)
    }
    return change
  }

  toDto(): MappingPreviewEvent {
    const changes = [...this.changes.values()]
      .map((c) => ({ kind: c.kind, name: c.name, gain: c.gain.size, lose: c.lose.size }))
      .sort((a, b) => b.gain + b.lose - (a.gain + a.lose) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.name.localeCompare(b.name))
    return {
      type: this.type,
      considered: this.considered,
      since: new Date(this.oldest).toISOString(),
      rules: this.matched.map((matched, index) => ({ index, matched })),
      left_out_by_filter: { saved: this.leftOutSaved, draft: this.leftOutDraft },
      changes,
      newly_skipped: this.newlySkipped,
      newly_sent: this.newlySent,
    }
  }
}

/** The draft against the saved document over the held events, counted per event type. */
export function previewMappings(input: PreviewInput): MappingPreview {
  const tallies = new Map<EventType, TypeTally>()
  const consentMode = input.consentMode
  const planWith = (held: PreviewEvent, mappings: Mappings) =>
    plan({
      event: held.event,
      memberId: held.memberId,
      eventTime: held.eventTime,
      eventId: held.event.id,
      credential: 'connected',
      mappings,
      marks: NO_MARKS,
      consentMode,
    })
  // A draft that is the saved document (as after a save) plans the same: each event is planned once.
  const same = JSON.stringify(input.saved) === JSON.stringify(input.draft)
  for (const held of input.events) {
    const type = held.event.type
    if (!isEventType(type)) continue
    let tally = tallies.get(type)
    if (!tally) {
      tally = new TypeTally(type, input.draft.events[type]?.rules?.length ?? 0)
      tallies.set(type, tally)
    }
    const saved = planWith(held, input.saved)
    tally.add(held.memberId, held.eventTime, saved, same ? saved : planWith(held, input.draft))
  }
  const counted = EVENT_TYPES.flatMap((type) => {
    const tally = tallies.get(type)
    return tally ? [tally] : []
  })
  const oldest = Math.min(...counted.map((t) => t.oldest))
  return {
    events: counted.map((t) => t.toDto()),
    held_since: counted.length > 0 ? new Date(oldest).toISOString() : null,
    ordering_simulated: false,
  }
}
