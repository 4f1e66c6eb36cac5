/**
 * A mappings preview in the owner's words: one sentence per event type, from the counts the server
 * answers (`MappingPreviewEvent`) and the draft's rules for that type, e.g. "Of the last 500
 * sign-ups, 312 match rule 1 (plan is pro-annual); 41 would now be left out by the filter (none
 * with the saved mappings); 12 members would lose the tag Trial." Pure, for the panel.
 */
import type { MappingPreviewChange, MappingPreviewEvent, Rule } from './api.ts'
import { conditionsWords } from './conditions.ts'
import { EVENT_COUNT_NOUNS } from './event-catalogue.ts'

/** The most tags, forms and sequences one sentence names; the rest are counted. */
export const PREVIEW_CHANGES_NAMED = 5

const counted = (n: number, one: string, other: string) => `${n} ${n === 1 ? one : other}`
const some = (n: number) => (n === 0 ? 'none' : String(n))

function ruleWords(index: number, matched: number, rule: Rule | undefined): string {
  const conditions = rule ? conditionsWords(rule.conditions) : ''
  const which = `rule ${index + 1}${rule ? ` (${conditions === '' ? 'no conditions' : conditions})` : ''}`
  return `${some(matched)} ${matched === 1 ? 'matches' : 'match'} ${which}`
}

function filterWords({ saved, draft }: MappingPreviewEvent['left_out_by_filter']): string | null {
  if (saved === draft) {
    if (draft === 0) return null
    return `${draft} ${draft === 1 ? 'is' : 'are'} left out by the filter`
  }
  return `${some(draft)} would now be left out by the filter (${some(saved)} with the saved mappings)`
}

function changeWords(change: MappingPreviewChange): string[] {
  const members = (n: number) => counted(n, 'member', 'members')
  const gains = change.kind === 'tag' ? `would now get the tag ${change.name}` : `would now be added to the ${change.kind} ${change.name}`
  const loses =
    change.kind === 'tag' ? `would lose the tag ${change.name}` : `would no longer be added to the ${change.kind} ${change.name}`
  return [
    ...(change.gain > 0 ? [`${members(change.gain)} ${gains}`] : []),
    ...(change.lose > 0 ? [`${members(change.lose)} ${loses}`] : []),
  ]
}

/** One event type's counts as the owner reads them. `rules`: the draft's rules for that type. */
export function previewSentence(counts: MappingPreviewEvent, rules: readonly Rule[] | undefined): string {
  const noun = EVENT_COUNT_NOUNS[counts.type]
  const intro = counts.considered === 1 ? `Of the one ${noun.one} held` : `Of the last ${counts.considered} ${noun.other}`
  const named = counts.changes.slice(0, PREVIEW_CHANGES_NAMED)
  const unnamed = counts.changes.length - named.length
  const clauses = [
    ...counts.rules.map((r) => ruleWords(r.index, r.matched, rules?.[r.index])),
    filterWords(counts.left_out_by_filter),
    counts.newly_skipped > 0 ? `${counts.newly_skipped} would no longer reach Kit` : null,
    counts.newly_sent > 0 ? `${counts.newly_sent} would now reach Kit` : null,
    ...named.flatMap(changeWords),
    unnamed > 0 ? `and ${counted(unnamed, 'more tag, form or sequence', 'more tags, forms or sequences')} would change` : null,
  ].filter((clause): clause is string => clause !== null)
  return `${intro}, ${clauses.length > 0 ? clauses.join('; ') : 'nothing would change'}.`
}
