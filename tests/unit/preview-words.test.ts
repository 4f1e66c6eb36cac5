/** A mappings preview's counts in the owner's words. */
import { describe, expect, it } from 'vitest'
import type { MappingPreviewEvent, Rule } from '#shared/api.ts'
import { emptyEventMapping } from '#shared/defaults.ts'
import { previewSentence } from '#shared/preview-words.ts'

const counts = (over: Partial<MappingPreviewEvent> = {}): MappingPreviewEvent => ({
  type: 'user.signed_up',
  considered: 500,
  since: '2026-11-01T10:00:00.000Z',
  rules: [],
  left_out_by_filter: { saved: 0, draft: 0 },
  changes: [],
  newly_skipped: 0,
  newly_sent: 0,
  ...over,
})

const annual: Rule = { ...emptyEventMapping(), conditions: [{ field: 'subscription.plan', op: 'is', value: 'pro-annual' }] }

describe('the preview in words', () => {
  it('says what the draft does to the last sign-ups: rules matched, the filter, tags lost', () => {
    const sentence = previewSentence(
      counts({
        rules: [{ index: 0, matched: 312 }],
        left_out_by_filter: { saved: 0, draft: 41 },
        changes: [{ kind: 'tag', name: 'Trial', gain: 0, lose: 12 }],
      }),
      [annual],
    )
    expect(sentence).toBe(
      'Of the last 500 sign-ups, 312 match rule 1 (plan is pro-annual); 41 would now be left out by the filter (none with the saved mappings); 12 members would lose the tag Trial.',
    )
  })

  it('calls the members of an import by name, and counts one of anything in the singular', () => {
    const sentence = previewSentence(
      counts({
        type: 'member.snapshot',
        considered: 1,
        rules: [
          { index: 0, matched: 1 },
          { index: 1, matched: 0 },
        ],
        left_out_by_filter: { saved: 1, draft: 1 },
        changes: [
          { kind: 'form', name: 'Newsletter', gain: 1, lose: 0 },
          { kind: 'sequence', name: 'Welcome', gain: 0, lose: 1 },
        ],
        newly_sent: 1,
      }),
      [annual, { ...emptyEventMapping(), conditions: [] }],
    )
    expect(sentence).toBe(
      'Of the one member from the import held, 1 matches rule 1 (plan is pro-annual); none match rule 2 (no conditions); 1 is left out by the filter; 1 would now reach Kit; 1 member would now be added to the form Newsletter; 1 member would no longer be added to the sequence Welcome.',
    )
  })

  it('says when nothing would change, and names rules by number when their conditions are not given', () => {
    expect(previewSentence(counts({ type: 'access.revoked', considered: 20 }), undefined)).toBe(
      'Of the last 20 access levels revoked, nothing would change.',
    )
    expect(previewSentence(counts({ rules: [{ index: 0, matched: 3 }], newly_skipped: 2 }), undefined)).toBe(
      'Of the last 500 sign-ups, 3 match rule 1; 2 would no longer reach Kit.',
    )
  })

  it('names the five tags, forms or sequences touching most members and counts the rest', () => {
    const changes = Array.from({ length: 7 }, (_, i) => ({ kind: 'tag' as const, name: `Tag ${i + 1}`, gain: 7 - i, lose: 0 }))
    const sentence = previewSentence(counts({ changes }), undefined)
    expect(sentence).toContain('7 members would now get the tag Tag 1; 6 members would now get the tag Tag 2')
    expect(sentence).toContain('3 members would now get the tag Tag 5')
    expect(sentence).not.toContain('Tag 6')
    expect(sentence).toMatch(/; and 2 more tags, forms or sequences would change\.$/)
  })
})
