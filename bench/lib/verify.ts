/** Compares the Kit stand-in's state with what the accepted events should have left there. */
import type { StandinAccountState } from '../../tests/kit-standin/server.ts'

export interface Expected {
  email: string
  tags: string[]
  fields?: Record<string, string>
}

export interface KitCheck {
  members: number
  /** Members whose subscriber exists exactly once with exactly the expected tags and fields. */
  correct: number
  missing: string[]
  duplicated: string[]
  wrongTags: string[]
  wrongFields: string[]
  unexpectedSubscribers: number
  duplicateTagNames: string[]
  ok: boolean
}

export function checkKit(account: StandinAccountState, expected: Expected[]): KitCheck {
  const tagName = new Map(account.tags.map((t) => [t.id, t.name]))
  const byEmail = new Map<string, typeof account.subscribers>()
  for (const s of account.subscribers) {
    const email = s.email_address.toLowerCase()
    byEmail.set(email, [...(byEmail.get(email) ?? []), s])
  }
  const check: KitCheck = {
    members: expected.length,
    correct: 0,
    missing: [],
    duplicated: [],
    wrongTags: [],
    wrongFields: [],
    unexpectedSubscribers: 0,
    duplicateTagNames: [],
    ok: false,
  }
  const wanted = new Set<string>()
  for (const e of expected) {
    const email = e.email.toLowerCase()
    wanted.add(email)
    const found = byEmail.get(email) ?? []
    if (found.length === 0) {
      check.missing.push(email)
      continue
    }
    if (found.length > 1) check.duplicated.push(email)
    const subscriber = found[0] as (typeof found)[number]
    const tags = [...subscriber.tags].map((id) => tagName.get(id) ?? `#${id}`).sort()
    const tagsRight = JSON.stringify(tags) === JSON.stringify([...e.tags].sort())
    if (!tagsRight) check.wrongTags.push(`${email}: has [${tags.join(', ')}], expected [${[...e.tags].sort().join(', ')}]`)
    const fieldsRight = Object.entries(e.fields ?? {}).every(([key, value]) => subscriber.fields[key] === value)
    if (!fieldsRight) check.wrongFields.push(`${email}: ${JSON.stringify(subscriber.fields)}`)
    if (found.length === 1 && tagsRight && fieldsRight) check.correct += 1
  }
  check.unexpectedSubscribers = [...byEmail.keys()].filter((email) => !wanted.has(email)).length
  const names = account.tags.map((t) => t.name.toLowerCase())
  check.duplicateTagNames = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))]
  check.ok = check.correct === check.members && check.unexpectedSubscribers === 0 && check.duplicateTagNames.length === 0
  return check
}

/** One line: "200/200 members exactly right" or what differs. */
export function describeCheck(check: KitCheck): string {
  if (check.ok) return `${check.correct}/${check.members} members exactly right in Kit (one subscriber each, expected tags and fields)`
  const parts = [`${check.correct}/${check.members} members exactly right in Kit`]
  if (check.missing.length) parts.push(`${check.missing.length} missing (e.g. ${check.missing[0]})`)
  if (check.duplicated.length) parts.push(`${check.duplicated.length} duplicated`)
  if (check.wrongTags.length) parts.push(`${check.wrongTags.length} with wrong tags (e.g. ${check.wrongTags[0]})`)
  if (check.wrongFields.length) parts.push(`${check.wrongFields.length} with wrong fields (e.g. ${check.wrongFields[0]})`)
  if (check.unexpectedSubscribers) parts.push(`${check.unexpectedSubscribers} unexpected subscribers`)
  if (check.duplicateTagNames.length) parts.push(`duplicate tags: ${check.duplicateTagNames.join(', ')}`)
  return parts.join('; ')
}
