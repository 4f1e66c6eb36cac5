import { describe, expect, it } from 'vitest'
import { defaultMappings } from '../../shared/defaults.ts'
import { sameMappings, slotForServerMessage, tagNameProblem, validateMappings } from '../../ui/src/lib/mappings.ts'
import { someMappings } from './factories.ts'

describe('mapping rules', () => {
  it('accepts the defaults', () => {
    expect(validateMappings(defaultMappings())).toEqual({})
  })

  it('accepts the known placeholders and refuses unknown ones', () => {
    expect(tagNameProblem('Plan: {{subscription.plan}}')).toBeNull()
    expect(tagNameProblem('{{ member.fields.mk_country }}')).toBeNull()
    expect(tagNameProblem('Hi {{member.email}}')).toMatch(/not a known placeholder/)
    expect(tagNameProblem('   ')).toMatch(/needs a name/)
    expect(tagNameProblem('Level {{access.level')).toMatch(/never closed/)
    expect(tagNameProblem('x'.repeat(256))).toMatch(/at most 255/)
  })

  it('refuses tag names with line breaks, NUL or other control characters, and keeps right-to-left names', () => {
    for (const name of ['VIP\nBcc: all', 'VIP\r', 'A\u0000B', 'Tab\there', 'C1\u0085']) {
      expect(tagNameProblem(name)).toBe('Tag names must not contain line breaks or control characters.')
    }
    expect(tagNameProblem('\u05d7\u05d1\u05e8 \u200fVIP')).toBeNull()
  })

  it('refuses form and sequence names and Kit field labels with control characters, beside the part', () => {
    const doc = someMappings((m) => {
      m.events['user.signed_up']!.add_to_forms.push({ id: 3, name: 'News\nletter' })
      m.events['user.signed_up']!.add_to_sequences.push({ id: 4, name: 'Wel\u0000come' })
      m.events['user.signed_up']!.add_tags.push({ name: 'Line\rbreak' })
      m.fields.push({ source: 'mk_country', kit_field: { key: 'country', label: 'Coun\ntry' } })
    })
    expect(validateMappings(doc)).toEqual({
      'events.user.signed_up.add_to_forms': '“News\nletter”: Form names must not contain line breaks or control characters; rename it in Kit.',
      'events.user.signed_up.add_to_sequences': '“Wel\u0000come”: Sequence names must not contain line breaks or control characters; rename it in Kit.',
      'events.user.signed_up.add_tags': '“Line\rbreak”: Tag names must not contain line breaks or control characters.',
      'fields.2.kit_field': 'Kit field labels must not contain line breaks or control characters.',
    })
    // The server's refusal of the same parts lands in the same slots.
    expect(slotForServerMessage('events.user.signed_up.add_to_forms[0].name must not contain line breaks or control characters')).toBe(
      'events.user.signed_up.add_to_forms',
    )
    expect(slotForServerMessage('fields[1].kit_field.label must not contain line breaks or control characters')).toBe('fields.1.kit_field')
  })

  it('refuses bad member field names, duplicates and two sources for one Kit field', () => {
    const doc = someMappings((m) => {
      m.fields.push({ source: 'MK_Country', kit_field: { key: 'country', label: 'Country' } })
      m.fields.push({ source: 'mk_access_level', kit_field: { key: 'level', label: 'Level' } })
      m.fields.push({ source: 'mk_plan', kit_field: { key: 'subscription_plan', label: 'Subscription plan' } })
    })
    expect(validateMappings(doc)).toEqual({
      'fields.2.source': expect.stringMatching(/start with mk_/),
      'fields.3.source': 'mk_access_level is already mapped above.',
      'fields.4.kit_field': 'The Kit field “Subscription plan” already receives mk_subscription_plan.',
    })
  })

  it('refuses the same tag twice in one list and more than 50 tags', () => {
    const doc = someMappings((m) => {
      m.events['user.signed_up']!.add_tags.push({ name: 'new member' })
      m.events['user.updated'] = {
        add_tags: Array.from({ length: 51 }, (_, i) => ({ name: `t${i}` })),
        remove_tags: [],
        add_to_forms: [],
        add_to_sequences: [],
        unsubscribe: false,
      }
    })
    const errors = validateMappings(doc)
    expect(errors['events.user.signed_up.add_tags']).toMatch(/listed twice/)
    expect(errors['events.user.updated.add_tags']).toMatch(/At most 50/)
  })

  it('finds the slot a server message names, in either path style', () => {
    expect(slotForServerMessage('events.user.signed_up.add_tags[0].name must not be blank')).toBe('events.user.signed_up.add_tags')
    expect(slotForServerMessage('body.events.access.granted.add_to_forms.3.id must be >= 1')).toBe('events.access.granted.add_to_forms')
    expect(slotForServerMessage('fields[1].source mk_x is mapped twice')).toBe('fields.1.source')
    expect(slotForServerMessage('fields[0].kit_field needs a key and a label')).toBe('fields.0.kit_field')
    expect(slotForServerMessage('body.fields must NOT have more than 100 items')).toBe('fields')
    expect(slotForServerMessage('Something else')).toBeNull()
  })

  it('compares documents regardless of missing event types and key order', () => {
    const a = someMappings()
    const b = someMappings((m) => {
      m.events['user.updated'] = { add_tags: [], remove_tags: [], add_to_forms: [], add_to_sequences: [], unsubscribe: false }
    })
    expect(sameMappings(a, b)).toBe(true)
    b.events['user.updated']!.unsubscribe = true
    expect(sameMappings(a, b)).toBe(false)
  })
})
