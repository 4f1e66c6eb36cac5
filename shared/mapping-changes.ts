/**
 * What changed between two mapping documents, in an owner's words: `added tag "VIP" to Member signs
 * up`. Pure and shared: the server stores these words with every saved version (the History list
 * shows them), and the panel says with the same function what restoring a version would change.
 *
 * Tags are compared by name (any case: the plugin finds a tag by name), forms and sequences by their
 * Kit id, field mappings by their `mk_` source; ids the plugin learnt from Kit change nothing an
 * owner sees. Rules are matched by what they are, not by position: a rule kept as it was is no
 * change, one whose conditions stayed is "changed", one whose actions stayed "applies" otherwise.
 */
import type { EventMapping, FieldMapping, KitRef, Mappings, Rule, TagRef } from './api.ts'
import { conditionsWords, type Condition } from './conditions.ts'
import { EVENT_TITLES } from './event-catalogue.ts'
import { EVENT_TYPES, type EventType } from './events.ts'

/** The words for two documents that differ in nothing an owner sees. */
export const NO_CHANGE = 'no change'

/** The most changes `changeWords` names; the others are counted. */
export const CHANGE_WORDS_MAX = 5

/** The words of version 0: what was in place before the community's first save. */
export const BASELINE_WORDS = {
  defaults: 'the defaults, before the first save',
  stored: 'the mappings in place before the first save',
} as const

type Actions = Pick<EventMapping, 'add_tags' | 'remove_tags' | 'add_to_forms' | 'add_to_sequences' | 'unsubscribe' | 'erase'>

/**
 * One change to a set of actions. `list`: something put in or taken out of a list ("added tag "X"
 * to …", "removed form "F" from …"); `does`: what the place now does ("… now unsubscribes").
 */
type Delta = { kind: 'list'; verb: 'added' | 'removed'; what: string } | { kind: 'does'; what: string }

const quoted = (name: string) => `"${name.trim()}"`

/** `"A"`, `"A" and "B"`, `"A", "B" and "C"`. */
function names(items: readonly string[]): string {
  const all = items.map(quoted)
  return all.length <= 1 ? (all[0] ?? '') : `${all.slice(0, -1).join(', ')} and ${all.at(-1)}`
}

const noun = (count: number, one: string) => (count === 1 ? one : `${one}s`)

/** A list item as the comparison sees it: what identifies it, and its name for the words. */
interface Named {
  key: string
  name: string
}

const tagKey = (tag: TagRef) => tag.name.trim().toLowerCase()
const refKey = (ref: KitRef) => String(ref.id)
const namedTags = (tags: readonly TagRef[]): Named[] => tags.map((t) => ({ key: tagKey(t), name: t.name }))
const namedRefs = (refs: readonly KitRef[]): Named[] => refs.map((r) => ({ key: refKey(r), name: r.name }))

/** The names of `after` not in `before` and those of `before` not in `after`, by key. */
function difference(before: readonly Named[], after: readonly Named[]): { added: string[]; removed: string[] } {
  const had = new Set(before.map((item) => item.key))
  const has = new Set(after.map((item) => item.key))
  return {
    added: after.filter((item) => !had.has(item.key)).map((item) => item.name),
    removed: before.filter((item) => !has.has(item.key)).map((item) => item.name),
  }
}

/** `tag "A"`, `tags "A" and "B"`. */
const counted = (items: readonly string[], one: string) => `${noun(items.length, one)} ${names(items)}`

function actionDeltas(before: Actions, after: Actions): Delta[] {
  const deltas: Delta[] = []
  const lists = [
    { one: 'tag', was: namedTags(before.add_tags), is: namedTags(after.add_tags) },
    { one: 'form', was: namedRefs(before.add_to_forms), is: namedRefs(after.add_to_forms) },
    { one: 'sequence', was: namedRefs(before.add_to_sequences), is: namedRefs(after.add_to_sequences) },
  ]
  for (const { one, was, is } of lists) {
    const { added, removed } = difference(was, is)
    if (added.length > 0) deltas.push({ kind: 'list', verb: 'added', what: counted(added, one) })
    if (removed.length > 0) deltas.push({ kind: 'list', verb: 'removed', what: counted(removed, one) })
  }
  const removals = difference(namedTags(before.remove_tags), namedTags(after.remove_tags))
  if (removals.added.length > 0) deltas.push({ kind: 'does', what: `now removes ${counted(removals.added, 'tag')}` })
  if (removals.removed.length > 0) deltas.push({ kind: 'does', what: `no longer removes ${counted(removals.removed, 'tag')}` })
  if (before.unsubscribe !== after.unsubscribe)
    deltas.push({ kind: 'does', what: after.unsubscribe ? 'now unsubscribes' : 'no longer unsubscribes' })
  if ((before.erase ?? false) !== (after.erase ?? false)) {
    deltas.push({ kind: 'does', what: after.erase ? 'now erases the person from Kit' : 'no longer erases the person from Kit' })
  }
  return deltas
}

/** A delta said of an event: `added tag "VIP" to Member signs up`, `Member signs up now unsubscribes`. */
const ofEvent = (delta: Delta, title: string) =>
  delta.kind === 'does' ? `${title} ${delta.what}` : `${delta.verb} ${delta.what} ${delta.verb === 'added' ? 'to' : 'from'} ${title}`

/** A delta said inside a rule, its place already named: `added tag "VIP"`, `now unsubscribes`. */
const inRule = (delta: Delta) => (delta.kind === 'does' ? delta.what : `${delta.verb} ${delta.what}`)

const when = (conditions: readonly Condition[]) => (conditions.length === 0 ? 'always' : `when ${conditionsWords(conditions)}`)

/** What a rule does, as an instruction: `add tag "VIP", unsubscribe`. */
function ruleDoes(rule: Rule): string {
  const listed = (list: readonly { name: string }[]) => list.map((item) => item.name)
  const parts = [
    rule.add_tags.length > 0 ? `add ${counted(listed(rule.add_tags), 'tag')}` : '',
    rule.remove_tags.length > 0 ? `remove ${counted(listed(rule.remove_tags), 'tag')}` : '',
    rule.add_to_forms.length > 0 ? `add to ${counted(listed(rule.add_to_forms), 'form')}` : '',
    rule.add_to_sequences.length > 0 ? `add to ${counted(listed(rule.add_to_sequences), 'sequence')}` : '',
    rule.unsubscribe ? 'unsubscribe' : '',
  ].filter((part) => part !== '')
  return parts.length > 0 ? parts.join(', ') : 'do nothing'
}

/** A rule as the comparison sees it: conditions in words, and its actions without the ids Kit gave. */
const conditionsKey = (rule: Rule) => conditionsWords(rule.conditions).toLowerCase()
function actionsKey(rule: Rule): string {
  const tags = (list: readonly TagRef[]) => list.map(tagKey).sort()
  const refs = (list: readonly KitRef[]) => list.map(refKey).sort()
  return JSON.stringify([
    tags(rule.add_tags),
    tags(rule.remove_tags),
    refs(rule.add_to_forms),
    refs(rule.add_to_sequences),
    rule.unsubscribe,
  ])
}
const ruleKey = (rule: Rule) => `${conditionsKey(rule)}|${actionsKey(rule)}`

/** Takes out of `from` the first rule `match` accepts, and answers it. */
function take(from: Rule[], match: (rule: Rule) => boolean): Rule | undefined {
  const i = from.findIndex(match)
  return i < 0 ? undefined : from.splice(i, 1)[0]
}

function ruleChanges(title: string, before: readonly Rule[], after: readonly Rule[]): string[] {
  const gone = [...before]
  const fresh: Rule[] = []
  for (const rule of after) if (!take(gone, (old) => ruleKey(old) === ruleKey(rule))) fresh.push(rule)
  if (gone.length === 0 && fresh.length === 0) {
    const reordered = before.some((rule, i) => ruleKey(rule) !== ruleKey(after[i] as Rule))
    return reordered ? [`reordered the rules of ${title}`] : []
  }
  const changes: string[] = []
  const added: Rule[] = []
  for (const rule of fresh) {
    const sameConditions = take(gone, (old) => conditionsKey(old) === conditionsKey(rule))
    if (sameConditions) {
      const that = rule.conditions.length === 0 ? 'that always applies' : when(rule.conditions)
      changes.push(`changed the rule of ${title} ${that}: ${actionDeltas(sameConditions, rule).map(inRule).join(', ')}`)
      continue
    }
    const sameActions = take(gone, (old) => actionsKey(old) === actionsKey(rule))
    if (sameActions) {
      changes.push(`changed when a rule of ${title} applies: ${when(rule.conditions)} (was ${when(sameActions.conditions)})`)
      continue
    }
    added.push(rule)
  }
  for (const rule of gone) changes.push(`removed a rule from ${title}: ${when(rule.conditions)}, ${ruleDoes(rule)}`)
  for (const rule of added) changes.push(`added a rule to ${title}: ${when(rule.conditions)}, ${ruleDoes(rule)}`)
  return changes
}

const NOTHING: EventMapping = { add_tags: [], remove_tags: [], add_to_forms: [], add_to_sequences: [], unsubscribe: false }

function eventChanges(type: EventType, before: EventMapping | undefined, after: EventMapping | undefined): string[] {
  const title = EVENT_TITLES[type]
  const was = before ?? NOTHING
  const is = after ?? NOTHING
  return [...actionDeltas(was, is).map((delta) => ofEvent(delta, title)), ...ruleChanges(title, was.rules ?? [], is.rules ?? [])]
}

function filterChanges(before: readonly Condition[] | undefined, after: readonly Condition[] | undefined): string[] {
  const was = conditionsWords(before)
  const is = conditionsWords(after)
  if (was === is) return []
  if (is === '') return ['removed the filter: every member reaches Kit']
  if (was === '') return [`set the filter: only members where ${is} reach Kit`]
  return [`changed the filter: only members where ${is} reach Kit (was ${was})`]
}

function fieldChanges(before: readonly FieldMapping[], after: readonly FieldMapping[]): string[] {
  const changes: string[] = []
  const had = new Map(before.map((f) => [f.source, f.kit_field]))
  for (const { source, kit_field: to } of after) {
    const from = had.get(source)
    had.delete(source)
    if (!from) changes.push(`mapped ${source} to Kit field ${quoted(to.label)}`)
    else if (from.label.trim() !== to.label.trim())
      changes.push(`${source} now goes to Kit field ${quoted(to.label)} (was ${quoted(from.label)})`)
    else if (from.key.trim() !== to.key.trim())
      changes.push(`${source} now goes to Kit field key ${to.key.trim()} (was ${from.key.trim()})`)
  }
  for (const [source, from] of had) changes.push(`stopped mapping ${source} to Kit field ${quoted(from.label)}`)
  return changes
}

/** Every change from `before` to `after`, one phrase each: events in their usual order, then the filter, then the fields. */
export function mappingChanges(before: Mappings, after: Mappings): string[] {
  return [
    ...EVENT_TYPES.flatMap((type) => eventChanges(type, before.events[type], after.events[type])),
    ...filterChanges(before.filter, after.filter),
    ...fieldChanges(before.fields, after.fields),
  ]
}

/**
 * The change as a short list: up to CHANGE_WORDS_MAX phrases joined with "; ", the others counted
 * ("and 3 more changes"); "no change" when nothing an owner sees differs.
 */
export function changeWords(before: Mappings, after: Mappings): string {
  const changes = mappingChanges(before, after)
  if (changes.length === 0) return NO_CHANGE
  if (changes.length <= CHANGE_WORDS_MAX) return changes.join('; ')
  const more = changes.length - (CHANGE_WORDS_MAX - 1)
  return `${changes.slice(0, CHANGE_WORDS_MAX - 1).join('; ')}; and ${more} more changes`
}
