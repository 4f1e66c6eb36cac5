import { describe, expect, it } from 'vitest'
import { hasUnclosedPlaceholder, unknownPlaceholder } from '#shared/events.ts'
import { fillTemplate } from '../../server/core/member-fields.ts'
import type { MemberEvent } from '../../server/core/envelope.ts'

const event = (fields: Record<string, string | null>, extra: Partial<MemberEvent['data']> = {}): MemberEvent => ({
  specversion: '1.0',
  id: 'evt_1',
  source: 'https://appstation.example/communities/c_1',
  type: 'access.granted',
  communityid: 'c_1',
  data: { member: { id: 'm_1', email: 'm@example.com', fields }, ...extra },
})

describe('tag placeholders', () => {
  it('fills trimmed paths and leaves a tag out when a value is missing or blank', () => {
    const e = event({ mk_country: '  Iceland ' }, { access: { level: 'gold' } })
    expect(fillTemplate('{{ access.level }} / {{member.fields.mk_country}}', e)).toBe('gold / Iceland')
    expect(fillTemplate('Plan {{subscription.plan}}', e)).toBeNull()
    expect(fillTemplate('{{member.fields.mk_country}}', event({ mk_country: '\u0007\n ' }))).toBeNull()
  })

  it('never lets filled values make a tag name longer than Kit allows', () => {
    const long = event({ mk_a: 'a'.repeat(500), mk_b: 'b'.repeat(500), mk_c: 'c'.repeat(500) })
    const name = fillTemplate('{{member.fields.mk_a}}{{member.fields.mk_b}}{{member.fields.mk_c}}', long)
    expect(name).toBe(`${'a'.repeat(100)}${'b'.repeat(100)}${'c'.repeat(55)}`)
  })

  it('finds unclosed and unknown placeholders', () => {
    expect(hasUnclosedPlaceholder('Level {{access.level')).toBe(true)
    expect(hasUnclosedPlaceholder('{{access.level}} and {{')).toBe(true)
    expect(hasUnclosedPlaceholder('Level {{access.level}}')).toBe(false)
    expect(hasUnclosedPlaceholder('Braces } and { alone')).toBe(false)
    expect(unknownPlaceholder('{{ member.email }}')).toBe('member.email')
    expect(unknownPlaceholder('{{ member.fields.mk_country }}')).toBeNull()
  })
})
