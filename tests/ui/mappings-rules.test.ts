import { describe, expect, it } from 'vitest'
import { defaultMappings } from '#shared/defaults.ts'
import { EVENT_PLACEHOLDERS } from '#shared/event-catalogue.ts'
import type { Mappings } from '#shared/api.ts'
import {
  blockingGuards,
  completeMappings,
  guardRails,
  sameMappings,
  slotForServerMessage,
  tagNameProblem,
  tagNameProblemFor,
  validateMappings,
} from '../../ui/src/lib/mappings.ts'
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
      'events.user.signed_up.add_to_forms':
        '“News\nletter”: Form names must not contain line breaks or control characters; rename it in Kit.',
      'events.user.signed_up.add_to_sequences':
        '“Wel\u0000come”: Sequence names must not contain line breaks or control characters; rename it in Kit.',
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

/** The defaults with every event type present, edited. */
function full(edit: (m: Mappings) => void): Mappings {
  const doc = completeMappings(defaultMappings())
  edit(doc)
  return doc
}

describe('guard rails', () => {
  const kit = {
    forms: [
      { id: 21, name: 'Newsletter', archived: false },
      { id: 22, name: 'Old form', archived: true },
    ],
    sequences: [
      { id: 31, name: 'Welcome' },
      { id: 32, name: 'Paused', active: false },
    ],
  }
  const unconfirmed = { signupUnsubscribeConfirmed: false }
  const summary = (doc: ReturnType<typeof someMappings>, lists = kit, options = unconfirmed) =>
    guardRails(doc, lists, options).map((g) => `${g.type} ${g.slot} ${g.level}: ${g.fixes.map((f) => f.kind).join(',')}`)

  it('finds nothing wrong with the defaults', () => {
    expect(guardRails(defaultMappings(), kit, unconfirmed)).toEqual([])
  })

  it('warns when an event unsubscribes after adding tags, forms or sequences', () => {
    const doc = full((m) => {
      m.events['subscription.canceled']!.unsubscribe = true
      m.events['user.deleted']!.unsubscribe = true
      m.events['user.updated']!.add_to_sequences.push({ id: 31, name: 'Welcome' })
      m.events['user.updated']!.unsubscribe = true
    })
    expect(summary(doc)).toEqual([
      'user.updated unsubscribe warning: unsubscribe-off',
      'subscription.canceled unsubscribe warning: unsubscribe-off',
    ])
    expect(guardRails(doc, kit, unconfirmed)[0]!.message).toBe(
      'This event starts sequences and then unsubscribes the member, so the emails those would send never reach them.',
    )
  })

  it('needs a confirmation to unsubscribe on sign-up, and blocks saving until then', () => {
    const doc = full((m) => {
      m.events['user.signed_up']!.add_tags = []
      m.events['user.signed_up']!.unsubscribe = true
    })
    const guards = guardRails(doc, kit, unconfirmed)
    expect(summary(doc)).toEqual(['user.signed_up unsubscribe confirm: confirm-unsubscribe,unsubscribe-off'])
    expect(blockingGuards(guards)).toHaveLength(1)
    expect(guardRails(doc, kit, { signupUnsubscribeConfirmed: true })).toEqual([])
  })

  it('refuses a tag that one event both adds and removes, whatever its case', () => {
    const doc = full((m) => m.events['subscription.started']!.add_tags.push({ name: 'cancelled ' }))
    const [guard] = guardRails(doc, kit, unconfirmed)
    expect(guard).toMatchObject({ type: 'subscription.started', slot: 'remove_tags', level: 'error' })
    expect(guard!.fixes).toEqual([
      { kind: 'remove', list: 'remove_tags', index: 0, label: 'Keep it in Add tags only' },
      { kind: 'remove', list: 'add_tags', index: 1, label: 'Keep it in Remove tags only' },
    ])
  })

  it('refuses a placeholder the event type never carries, from the one shared definition', () => {
    expect(EVENT_PLACEHOLDERS['user.signed_up']).toEqual(['member.fields'])
    const doc = full((m) => {
      m.events['user.signed_up']!.add_tags.push({ name: 'Plan {{subscription.plan}}' })
      m.events['subscription.canceled']!.remove_tags.push({ name: 'Level {{ access.level }}' })
      m.events['access.granted']!.add_tags.push({ name: 'From {{member.fields.mk_country}}' })
    })
    expect(summary(doc)).toEqual(['user.signed_up add_tags error: remove', 'subscription.canceled remove_tags error: remove'])
    expect(tagNameProblemFor('user.signed_up', 'Plan {{subscription.plan}}')).toBe(
      '{{subscription.plan}} is never filled for user.signed_up, so the tag would never be applied; use {{member.fields.mk_…}}.',
    )
    expect(tagNameProblemFor('subscription.started', 'Plan {{subscription.plan}}')).toBeNull()
    expect(tagNameProblemFor('access.revoked', 'Hi {{member.email}}')).toMatch(/not a known placeholder/)
  })

  it('warns about archived, inactive or vanished forms and sequences once Kit’s lists are known', () => {
    const doc = full((m) => {
      m.events['user.signed_up']!.add_to_forms.push(
        { id: 21, name: 'Newsletter' },
        { id: 22, name: 'Old form' },
        { id: 23, name: 'Gone form' },
      )
      m.events['user.signed_up']!.add_to_sequences.push({ id: 31, name: 'Welcome' }, { id: 32, name: 'Paused' })
    })
    expect(guardRails(doc, kit, unconfirmed).map((g) => g.message)).toEqual([
      'The form “Old form” is archived in Kit: members cannot be added to it.',
      'The form “Gone form” is no longer in Kit: members cannot be added to it.',
      'The sequence “Paused” is inactive in Kit: Kit refuses to add members to it.',
    ])
    expect(guardRails(doc, { forms: null, sequences: null }, unconfirmed)).toEqual([])
  })
})

describe('guard rails on a sign-up that unsubscribes and adds tags', () => {
  it('shows only the confirmation until it is given, then the warning', () => {
    const doc = completeMappings(defaultMappings())
    doc.events['user.signed_up']!.unsubscribe = true
    expect(guardRails(doc, { forms: null, sequences: null }, { signupUnsubscribeConfirmed: false }).map((g) => g.level)).toEqual([
      'confirm',
    ])
    expect(guardRails(doc, { forms: null, sequences: null }, { signupUnsubscribeConfirmed: true }).map((g) => g.level)).toEqual(['warning'])
  })
})
