import { describe, expect, it } from 'vitest'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import type { Mappings } from '#shared/api.ts'
import { MAX_LINE_CHARS, parseCsvLine, readLines, readRows, RowChecker, snapshotEvent, SyncInputError, type SnapshotMember } from '../../server/pipeline/sync-input.ts'
import { planSync, type KnownSubscriber } from '../../server/pipeline/sync-plan.ts'

const budget = { requestsPerWindow: 114, windowMs: 60_000 }

const member = (n: number, over: Partial<SnapshotMember> = {}): SnapshotMember => ({
  line: n + 1,
  memberId: `m_${n}`,
  email: `m${n}@example.com`,
  firstName: `Name ${n}`,
  fields: {},
  plan: null,
  status: null,
  accessLevel: null,
  ...over,
})

const eventOf = (m: SnapshotMember) => snapshotEvent(m, { id: `e_${m.line}`, communityId: 'c_1', time: 0, syncId: 's_1' })

function mappingsWith(change: (doc: Mappings) => void = () => {}): Mappings {
  const doc = defaultMappings()
  change(doc)
  return doc
}

describe('the sync planner', () => {
  it('sorts members into create, update and unchanged from what the plugin last wrote, with at most 5 examples each', () => {
    const known: Record<string, KnownSubscriber> = {
      m_1: { email: 'm1@example.com', firstName: 'Name 1', fields: { subscription_plan: 'pro' } },
      m_2: { email: 'old@example.com', firstName: 'Name 2', fields: {} },
      m_3: { email: 'm3@example.com', firstName: 'Name 3', fields: { subscription_plan: 'free' } },
    }
    const members = [
      member(1, { plan: 'pro' }),
      member(2),
      member(3, { plan: 'pro' }),
      ...Array.from({ length: 7 }, (_, i) => member(10 + i)),
    ]
    const plan = planSync(members.map((m) => ({ event: eventOf(m), known: known[m.memberId] ?? null })), mappingsWith(), budget)
    expect(plan.subscribers.unchanged).toEqual({ count: 1, examples: ['m1@example.com'] })
    expect(plan.subscribers.update).toEqual({ count: 2, examples: ['m2@example.com', 'm3@example.com'] })
    expect(plan.subscribers.create.count).toBe(7)
    expect(plan.subscribers.create.examples).toEqual(['m10@example.com', 'm11@example.com', 'm12@example.com', 'm13@example.com', 'm14@example.com'])
    expect(plan.accepted).toBe(10)
  })

  it('adds and removes the tags of the subscription and access mappings the member\'s state implies, never user.signed_up\'s', () => {
    const members = [
      member(1, { status: 'active', plan: 'pro' }),
      member(2, { status: 'canceled' }),
      member(3, { accessLevel: 'gold' }),
      member(4, { accessLevel: 'gold', status: 'trialing' }),
      member(5),
    ]
    // Known in Kit and unchanged (so only the tag changes cost requests).
    const known = (m: SnapshotMember): KnownSubscriber => ({
      email: m.email,
      firstName: m.firstName,
      fields: { subscription_plan: m.plan, access_level: m.accessLevel },
    })
    const plan = planSync(members.map((m) => ({ event: eventOf(m), known: known(m) })), mappingsWith(), budget)
    expect(plan.subscribers.unchanged.count).toBe(5)
    expect(plan.tags_added).toEqual([
      { name: 'Access: gold', count: 2, examples: ['m3@example.com', 'm4@example.com'] },
      { name: 'Active Member', count: 2, examples: ['m1@example.com', 'm4@example.com'] },
      { name: 'Cancelled', count: 1, examples: ['m2@example.com'] },
    ])
    expect(plan.tags_removed).toEqual([
      { name: 'Cancelled', count: 2, examples: ['m1@example.com', 'm4@example.com'] },
      { name: 'Active Member', count: 1, examples: ['m2@example.com'] },
    ])
    // 5 tags added, 3 removed.
    expect(plan.estimated_kit_requests).toBe(8)
    expect(plan.estimated_seconds).toBe(5)
  })

  it('lists no tag removal for a member new in Kit: a subscriber the sync creates has no tags', () => {
    const members = [member(1, { status: 'active', plan: 'pro' }), member(2, { status: 'canceled' }), member(3, { status: 'canceled' })]
    const knownTwo: KnownSubscriber = { email: 'm2@example.com', firstName: 'Name 2', fields: {} }
    const plan = planSync(members.map((m) => ({ event: eventOf(m), known: m.memberId === 'm_2' ? knownTwo : null })), mappingsWith(), budget)
    expect(plan.subscribers.create.examples).toEqual(['m1@example.com', 'm3@example.com'])
    expect(plan.tags_removed).toEqual([{ name: 'Active Member', count: 1, examples: ['m2@example.com'] }])
    // 2 creates, 3 tags added, the one removal from the member Kit already has.
    expect(plan.estimated_kit_requests).toBe(6)
  })

  it('applies the member.snapshot mapping\'s own tags, forms and sequences to everyone', () => {
    const mappings = mappingsWith((doc) => {
      doc.events['member.snapshot'] = {
        ...emptyEventMapping(),
        add_tags: [{ name: 'Imported' }],
        add_to_forms: [{ id: 7, name: 'Welcome form' }],
        add_to_sequences: [{ id: 8, name: 'Onboarding' }],
      }
    })
    const plan = planSync([member(1), member(2)].map((m) => ({ event: eventOf(m), known: null })), mappings, budget)
    expect(plan.tags_added).toEqual([{ name: 'Imported', count: 2, examples: ['m1@example.com', 'm2@example.com'] }])
    expect(plan.forms_added).toEqual([{ name: 'Welcome form', count: 2, examples: ['m1@example.com', 'm2@example.com'] }])
    expect(plan.sequences_added).toEqual([{ name: 'Onboarding', count: 2, examples: ['m1@example.com', 'm2@example.com'] }])
  })

  it('counts refused rows and keeps them with their reason', () => {
    const refused = { line: 4, email: 'x', member_id: 'm_x', reason: 'email is not an email address' }
    const plan = planSync([{ event: eventOf(member(1)), known: null }, { refused }], mappingsWith(), budget, 'jsonl', ['nickname'])
    expect(plan).toMatchObject({ rows: 2, accepted: 1, refused: 1, refused_rows: [refused], unknown_columns: ['nickname'], format: 'jsonl' })
  })
})

describe('reading a member file', () => {
  it('reads quoted CSV values with commas and doubled quotes', () => {
    expect(parseCsvLine('a@example.com,"Smith, ""Jo""",,x', 2)).toEqual(['a@example.com', 'Smith, "Jo"', '', 'x'])
  })

  it('refuses a quote inside an unquoted value, naming the line', () => {
    expect(() => parseCsvLine('a@example.com,Jo"e', 7)).toThrow(/^Line 7: value 2 holds a quote/)
  })

  it('splits lines across chunks (CRLF, a byte-order mark, a character cut in two) and counts blank lines', async () => {
    const bytes = Buffer.from('\uFEFFemail,member_id,first_name\r\n\r\nz@example.com,m_1,Zoë\r\n')
    const cut = bytes.indexOf(Buffer.from('ë')) + 1
    const chunks = [bytes.subarray(0, 5), bytes.subarray(5, cut), bytes.subarray(cut)]
    const lines = []
    for await (const line of readLines(chunks, 1000, 'too big')) lines.push(line)
    expect(lines).toEqual([
      { number: 1, text: 'email,member_id,first_name' },
      { number: 3, text: 'z@example.com,m_1,Zoë' },
    ])
  })

  it('stops with 413 as soon as the bytes pass the limit', async () => {
    const read = async () => {
      for await (const _line of readLines([Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x61)], 1000, 'over the limit')) void _line
    }
    await expect(read()).rejects.toEqual(new SyncInputError(413, 'payload_too_large', 'over the limit'))
  })

  it('stops at a line longer than any member needs, without reading the rest of the file', async () => {
    // A file that is one endless line: holding it whole and scanning it again for every chunk would take the server's time.
    let pulled = 0
    const endless = (function* () {
      for (;;) {
        pulled += 1
        yield Buffer.alloc(16 * 1024, 0x61)
      }
    })()
    const read = async () => {
      for await (const _line of readLines(endless, 64 * 1024 * 1024, 'too big')) void _line
    }
    await expect(read()).rejects.toEqual(
      new SyncInputError(400, 'malformed_file', `Line 1: it is longer than ${MAX_LINE_CHARS / 1024} KiB, more than any member needs (is each member on a line of its own?). Fix that line and send the file again; nothing was queued.`),
    )
    expect(pulled * 16 * 1024).toBeLessThanOrEqual(MAX_LINE_CHARS + 16 * 1024)
  })

  it('treats an empty CSV cell as not given and a JSON null as an explicit empty value', async () => {
    const csvRows = []
    const lines = async function* () {
      yield { number: 1, text: 'email,member_id,mk_a' }
      yield { number: 2, text: 'a@example.com,m_1,' }
    }
    for await (const row of readRows(lines(), 'csv', () => {})) csvRows.push(row)
    expect(csvRows).toEqual([{ line: 2, values: { email: 'a@example.com', member_id: 'm_1' } }])

    const jsonRows = []
    const jsonLines = async function* () {
      yield { number: 1, text: '{"email":"a@example.com","member_id":42,"mk_a":null}' }
    }
    for await (const row of readRows(jsonLines(), 'jsonl', () => {})) jsonRows.push(row)
    expect(jsonRows).toEqual([{ line: 1, values: { email: 'a@example.com', member_id: '42', mk_a: null } }])
  })

  it('refuses members with an unknown subscription status, and duplicates by normalised email', () => {
    const checker = new RowChecker()
    expect(checker.check({ line: 2, values: { email: 'A@Example.com ', member_id: 'm_1' } })).toMatchObject({ email: 'a@example.com', memberId: 'm_1' })
    expect(checker.check({ line: 3, values: { email: 'a@example.com', member_id: 'm_2' } })).toMatchObject({ reason: 'duplicate email: line 2 has the same address' })
    expect(checker.check({ line: 4, values: { email: 'b@example.com', member_id: 'm_3', subscription_status: 'frozen' } })).toMatchObject({
      reason: 'subscription_status "frozen" is not one of active, trialing, past_due, canceled, cancelled, expired',
    })
  })
})
