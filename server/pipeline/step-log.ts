/**
 * What one attempt did in Kit, step by step, for the owner's Activity; and how Kit's answers about
 * fields, tags and addresses are read, for the processor's executor.
 */
import type { DeliveryStep, DeliveryStepAction } from '#shared/api.ts'
import type { KitFieldValues, KitSubscriber } from '../core/kit.ts'
import type { PlannedField } from '../core/planner.ts'
import { isKitError, KitFieldWarnings, type KitError } from '../kit/errors.ts'

const STEP_WORDS: Record<DeliveryStepAction, (target: string | null) => string> = {
  'subscriber.created': () => 'subscriber created',
  'subscriber.updated': () => 'subscriber updated',
  'subscriber.unchanged': () => 'subscriber unchanged',
  'subscriber.unconfirmed': (t) => `${t ?? ''} unconfirmed in Kit`,
  'fields.written': (t) => `fields written (${t ?? ''})`,
  'tag.added': (t) => `tag "${t ?? ''}" added`,
  'tag.removed': (t) => `tag "${t ?? ''}" removed`,
  'form.added': (t) => `added to form "${t ?? ''}"`,
  'sequence.added': (t) => `added to sequence "${t ?? ''}"`,
  unsubscribed: () => 'unsubscribed',
  skipped: (t) => `skipped ${t ?? ''}`,
  warning: (t) => `warning about ${t ?? ''}`,
  failed: (t) => `${t ?? 'a step'} failed`,
}

const CHANGES: readonly DeliveryStepAction[] = [
  'subscriber.created',
  'subscriber.updated',
  'fields.written',
  'tag.added',
  'tag.removed',
  'form.added',
  'sequence.added',
  'unsubscribed',
]

export const step = (action: DeliveryStepAction, target: string | null = null, detail: string | null = null): DeliveryStep => ({
  action,
  target,
  detail,
})

export const capitalise = (text: string) => `${text.charAt(0).toUpperCase()}${text.slice(1)}`

/**
 * What one attempt did in Kit, step by step, and what it was doing when it stopped, so a failure
 * can always say which parts were applied.
 */
export class StepLog {
  readonly steps: DeliveryStep[] = []
  /** The part being attempted, phrased as its failure: `tag "VIP" not added`. */
  attempting: string | null = null

  add(action: DeliveryStepAction, target: string | null = null, detail: string | null = null): void {
    this.steps.push(step(action, target, detail))
    this.attempting = null
  }

  /** "Subscriber created, tag "New Member" added; " when something was applied, else "". */
  appliedPrefix(): string {
    const words = this.steps.filter((s) => CHANGES.includes(s.action)).map((s) => STEP_WORDS[s.action](s.target))
    return words.length === 0 ? '' : `${capitalise(words.join(', '))}; `
  }
}

/** "5 minutes", "1 minute", "45 seconds". */
export function durationWords(ms: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`
  return ms >= 60_000 ? plural(Math.round(ms / 60_000), 'minute') : plural(Math.max(1, Math.round(ms / 1000)), 'second')
}

/** A planned field with the member field it comes from, as the executor writes and names it. */
export interface FieldWrite extends PlannedField {
  source: string
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The fields a Kit error or warning names (by key or label); empty when it names none of them. */
function namedFields(messages: string[], fields: FieldWrite[]): FieldWrite[] {
  return fields.filter((f) =>
    [f.key, f.label].some((name) => {
      const word = new RegExp(`(^|[^A-Za-z0-9_])${escapeRegExp(name)}($|[^A-Za-z0-9_])`, 'i')
      return messages.some((m) => word.test(m))
    }),
  )
}

/**
 * The fields Kit did not write because it did not know their keys: named in `warnings` on a 2xx
 * (all sent fields when the warnings name none), or named by a 422. null for any other error.
 */
export function unknownFields(err: unknown, fields: FieldWrite[]): FieldWrite[] | null {
  if (fields.length === 0 || !isKitError(err)) return null
  if (err instanceof KitFieldWarnings) {
    const named = namedFields(err.messages, fields)
    return named.length > 0 ? named : fields
  }
  if (err.kind !== 'validation' || err.status !== 422) return null
  const named = namedFields(
    err.messages.filter((m) => /field/i.test(m)),
    fields,
  )
  return named.length > 0 ? named : null
}

/** Kit answering a tag call as if the tag id were wrong: a 404, or a 422 that speaks of the tag. */
export const namesTag = (err: KitError) => err.kind === 'not_found' || (err.status === 422 && err.messages.some((m) => /\btag\b/i.test(m)))

export const describeFields = (fields: FieldWrite[]) => fields.map((f) => `"${f.label}" (key ${f.key}, from ${f.source})`).join(', ')

export const valuesOf = (fields: FieldWrite[]): KitFieldValues => Object.fromEntries(fields.map((f) => [f.key, f.value]))

/** The labels of the written fields with these keys, as a log line lists them. */
export const labelsOf = (fields: FieldWrite[], keys: string[]) =>
  fields
    .filter((f) => keys.includes(f.key))
    .map((f) => f.label)
    .join(', ')

/** The field values of a Kit answer, as the plugin remembers them. */
export const answerFields = (subscriber: KitSubscriber): Record<string, string | null> => ({ ...subscriber.fields })

/** Kit refusing a new email address because another subscriber already has it. */
export const addressTaken = (err: KitError) => err.status === 422 && /already|taken|exists/i.test(err.message)
