import { describe, expect, it } from 'vitest'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import type { Mappings } from '#shared/api.ts'
import { ColumnResolver } from '../../server/pipeline/sync-columns.ts'
import { readMemberFile, type MemberFile } from '../../server/pipeline/sync-file.ts'
import {
  MAX_LINE_CHARS,
  readCsvRecords,
  readLines,
  RowChecker,
  snapshotEvent,
  SyncInputError,
  type SnapshotMember,
} from '../../server/pipeline/sync-input.ts'
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
  consent: null,
  ...over,
})

const eventOf = (m: SnapshotMember) => snapshotEvent(m, { id: `e_${m.line}`, communityId: 'c_1', time: 0, syncId: 's_1' })

function mappingsWith(change: (doc: Mappings) => void = () => {}): Mappings {
  const doc = defaultMappings()
  change(doc)
  return doc
}

describe('the sync planner', () => {
  it('counts Kit requests per bulk batch for a connection that sends in bulk, per member otherwise', () => {
    const mappings = mappingsWith((doc) => {
      for (const type of Object.keys(doc.events) as (keyof Mappings['events'])[]) doc.events[type] = emptyEventMapping()
      doc.events['member.snapshot'] = { ...emptyEventMapping(), add_tags: [{ name: 'Imported' }] }
      doc.fields = [
        { source: 'mk_plan', kit_field: { key: 'plan', label: 'Plan' } },
        { source: 'mk_company', kit_field: { key: 'company', label: 'Company' } },
      ]
    })
    const entries = Array.from({ length: 250 }, (_, i) => ({
      event: eventOf(member(i, { fields: { mk_plan: 'pro', mk_company: `Co ${i}` } })),
      known: null,
    }))
    const single = planSync(entries, mappings, budget)
    const bulk = planSync(entries, mappings, budget, 'csv', [], 'all_members', true)
    // Per member: the subscriber with its fields, then the tag.
    expect(single.estimated_kit_requests).toBe(500)
    // In batches of 100: 3 creations, 5 requests for 500 field values, 3 for 250 taggings.
    expect(bulk.estimated_kit_requests).toBe(11)
    expect(bulk.subscribers.create.count).toBe(250)
    expect(bulk.tags_added).toEqual(single.tags_added)
  })

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
    const plan = planSync(
      members.map((m) => ({ event: eventOf(m), known: known[m.memberId] ?? null })),
      mappingsWith(),
      budget,
    )
    expect(plan.subscribers.unchanged).toEqual({ count: 1, examples: ['m1@example.com'] })
    expect(plan.subscribers.update).toEqual({ count: 2, examples: ['m2@example.com', 'm3@example.com'] })
    expect(plan.subscribers.create.count).toBe(7)
    expect(plan.subscribers.create.examples).toEqual([
      'm10@example.com',
      'm11@example.com',
      'm12@example.com',
      'm13@example.com',
      'm14@example.com',
    ])
    expect(plan.accepted).toBe(10)
  })

  it("adds and removes the tags of the subscription and access mappings the member's state implies, never user.signed_up's", () => {
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
    const plan = planSync(
      members.map((m) => ({ event: eventOf(m), known: known(m) })),
      mappingsWith(),
      budget,
    )
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
    const plan = planSync(
      members.map((m) => ({ event: eventOf(m), known: m.memberId === 'm_2' ? knownTwo : null })),
      mappingsWith(),
      budget,
    )
    expect(plan.subscribers.create.examples).toEqual(['m1@example.com', 'm3@example.com'])
    expect(plan.tags_removed).toEqual([{ name: 'Active Member', count: 1, examples: ['m2@example.com'] }])
    // 2 creates, 3 tags added, the one removal from the member Kit already has.
    expect(plan.estimated_kit_requests).toBe(6)
  })

  it("applies the member.snapshot mapping's own tags, forms and sequences to everyone", () => {
    const mappings = mappingsWith((doc) => {
      doc.events['member.snapshot'] = {
        ...emptyEventMapping(),
        add_tags: [{ name: 'Imported' }],
        add_to_forms: [{ id: 7, name: 'Welcome form' }],
        add_to_sequences: [{ id: 8, name: 'Onboarding' }],
      }
    })
    const plan = planSync(
      [member(1), member(2)].map((m) => ({ event: eventOf(m), known: null })),
      mappings,
      budget,
    )
    expect(plan.tags_added).toEqual([{ name: 'Imported', count: 2, examples: ['m1@example.com', 'm2@example.com'] }])
    expect(plan.forms_added).toEqual([{ name: 'Welcome form', count: 2, examples: ['m1@example.com', 'm2@example.com'] }])
    expect(plan.sequences_added).toEqual([{ name: 'Onboarding', count: 2, examples: ['m1@example.com', 'm2@example.com'] }])
  })

  it('counts refused rows and keeps them with their reason', () => {
    const refused = { line: 4, email: 'x', member_id: 'm_x', reason: 'email is not an email address' }
    const plan = planSync([{ event: eventOf(member(1)), known: null }, { refused }], mappingsWith(), budget, 'jsonl', [
      { name: 'nickname', field: null },
    ])
    expect(plan).toMatchObject({
      rows: 2,
      accepted: 1,
      refused: 1,
      refused_rows: [refused],
      columns: [{ name: 'nickname', field: null }],
      format: 'jsonl',
    })
  })
})

describe('the sync planner and consent', () => {
  const agreed = { marketing: true, at: '2026-11-01T00:00:00.000Z' }
  const withdrew = { marketing: false, at: null }
  const members = [member(1, { consent: agreed }), member(2), member(3, { consent: withdrew }), member(4), member(5, { consent: withdrew })]
  const known: Record<string, KnownSubscriber> = {
    m_4: { email: 'm4@example.com', firstName: 'Name 4', fields: {} },
    m_5: { email: 'm5@example.com', firstName: 'Name 5', fields: {} },
  }
  const entries = () => members.map((m) => ({ event: eventOf(m), known: known[m.memberId] ?? null }))

  it('in the consent-only mode leaves out members new in Kit who have not agreed, and counts them with examples', () => {
    const plan = planSync(entries(), mappingsWith(), budget, 'csv', [], 'marketing_consent')
    expect(plan.left_out_no_consent).toEqual({ count: 2, examples: ['m2@example.com', 'm3@example.com'] })
    expect(plan.subscribers.create).toEqual({ count: 1, examples: ['m1@example.com'] })
    expect(plan.subscribers.unchanged).toEqual({ count: 2, examples: ['m4@example.com', 'm5@example.com'] })
    expect(plan.unsubscribed).toEqual({ count: 1, examples: ['m5@example.com'] })
    expect(plan.accepted).toBe(5)
  })

  it('with every member leaves nobody out, creates nobody who withdrew and unsubscribes them', () => {
    const plan = planSync(entries(), mappingsWith(), budget)
    expect(plan.left_out_no_consent).toEqual({ count: 0, examples: [] })
    expect(plan.subscribers.create).toEqual({ count: 2, examples: ['m1@example.com', 'm2@example.com'] })
    expect(plan.unsubscribed).toEqual({ count: 2, examples: ['m3@example.com', 'm5@example.com'] })
  })

  it("puts the row's consent into the snapshot event", () => {
    expect(eventOf(member(1, { consent: agreed })).data.member.consent).toEqual({ marketing: true, at: '2026-11-01T00:00:00.000Z' })
    expect(eventOf(member(3, { consent: withdrew })).data.member.consent).toEqual({ marketing: false })
    expect(eventOf(member(2)).data.member).not.toHaveProperty('consent')
  })
})

describe('reading a member file', () => {
  const records = async (text: string | Buffer[]) => {
    const out = []
    for await (const r of readCsvRecords(typeof text === 'string' ? [Buffer.from(text)] : text, 1 << 20, 'too big')) out.push(r)
    return out
  }

  it('reads quoted CSV values with commas, doubled quotes and line breaks, numbering each record by its first line', async () => {
    expect(await records('email,first_name,note\r\na@example.com,"Smith, ""Jo""","two\r\nlines"\r\n\r\nb@example.com,Bo,x\r\n')).toEqual([
      { line: 1, values: ['email', 'first_name', 'note'] },
      { line: 2, values: ['a@example.com', 'Smith, "Jo"', 'two\r\nlines'] },
      { line: 5, values: ['b@example.com', 'Bo', 'x'] },
    ])
  })

  it('keeps a quote inside an unquoted value as it is', async () => {
    expect(await records('a@example.com,Jo"e\n')).toEqual([{ line: 1, values: ['a@example.com', 'Jo"e'] }])
  })

  it('names the line where an unclosed quoted value starts', async () => {
    await expect(records('email,member_id\na@example.com,m_1\n\n"b@example.com,m_2\nc@example.com,m_3\n')).rejects.toEqual(
      new SyncInputError(
        400,
        'malformed_file',
        'Line 4: a quoted value is not closed before the end of the file. Fix that line and send the file again; nothing was queued.',
      ),
    )
  })

  it('reads a CSV whose bytes arrive cut anywhere, a character cut in two and a byte-order mark included', async () => {
    const bytes = Buffer.from('\uFEFFemail,member_id,first_name\r\n\r\nz@example.com,m_1,"Zoë\nZed"\n')
    const chunks = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1))
    expect(await records(chunks)).toEqual([
      { line: 1, values: ['email', 'member_id', 'first_name'] },
      { line: 3, values: ['z@example.com', 'm_1', 'Zoë\nZed'] },
    ])
  })

  it('stops a CSV at a record longer than any member needs (an unclosed quote), without reading the rest of the file', async () => {
    let pulled = 0
    const endless = (function* () {
      yield Buffer.from('email,member_id\n"a@example.com')
      for (;;) {
        pulled += 1
        yield Buffer.from('x\n'.repeat(8 * 1024))
      }
    })()
    const read = async () => {
      for await (const _r of readCsvRecords(endless, 64 * 1024 * 1024, 'too big')) void _r
    }
    await expect(read()).rejects.toMatchObject({
      status: 400,
      code: 'malformed_file',
      message: expect.stringMatching(/^Line 2: it is longer than 256 KiB/),
    })
    // A few chunks of read-ahead at most, never the rest of a 64 MiB file.
    expect(pulled * 16 * 1024).toBeLessThanOrEqual(MAX_LINE_CHARS + 4 * 16 * 1024)
  })

  it('stops a CSV at one endless unquoted line too', async () => {
    const endless = (function* () {
      yield Buffer.from('email,member_id\n')
      for (;;) yield Buffer.alloc(16 * 1024, 0x61)
    })()
    const read = async () => {
      for await (const _r of readCsvRecords(endless, 64 * 1024 * 1024, 'too big')) void _r
    }
    await expect(read()).rejects.toMatchObject({
      status: 400,
      code: 'malformed_file',
      message: expect.stringMatching(/^Line 2: it is longer than 256 KiB/),
    })
  })

  it('stops a CSV with 413 as soon as the bytes pass the limit', async () => {
    const read = async () => {
      for await (const _r of readCsvRecords([Buffer.from('email,member_id\n'), Buffer.alloc(2000, 0x61)], 1000, 'over the limit')) void _r
    }
    await expect(read()).rejects.toEqual(new SyncInputError(413, 'payload_too_large', 'over the limit'))
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
      new SyncInputError(
        400,
        'malformed_file',
        `Line 1: it is longer than ${MAX_LINE_CHARS / 1024} KiB, more than any member needs (is each member on a line of its own?). Fix that line and send the file again; nothing was queued.`,
      ),
    )
    expect(pulled * 16 * 1024).toBeLessThanOrEqual(MAX_LINE_CHARS + 16 * 1024)
  })

  const file = (body: string, format: 'csv' | 'jsonl', columns = new ColumnResolver(null, {})): MemberFile => ({
    format,
    body: (async function* () {
      yield Buffer.from(body)
    })(),
    columns,
    maxBytes: 1 << 20,
    maxRows: 100,
    tooLarge: 'too large',
    tooManyRows: 'too many',
  })
  const read = async (f: MemberFile) => {
    const out = []
    for await (const m of readMemberFile(f)) out.push(m)
    return out
  }

  it('treats an empty CSV cell as not given and a JSON null as an explicit empty value', async () => {
    expect(await read(file('email,member_id,mk_a\na@example.com,m_1,\n', 'csv'))).toEqual([
      {
        line: 2,
        memberId: 'm_1',
        email: 'a@example.com',
        firstName: null,
        fields: {},
        plan: null,
        status: null,
        accessLevel: null,
        consent: null,
      },
    ])
    expect(await read(file('{"email":"a@example.com","member_id":42,"mk_a":null}\n', 'jsonl'))).toEqual([
      {
        line: 1,
        memberId: '42',
        email: 'a@example.com',
        firstName: null,
        fields: { mk_a: null },
        plan: null,
        status: null,
        accessLevel: null,
        consent: null,
      },
    ])
  })

  it('maps columns to member fields: same names and common spellings by default, others ignored, a sent mapping in full', async () => {
    const body = 'Email Address,ID,First Name,Company\na@example.com,m_1,Ann,Acme\n'
    const byDefault = new ColumnResolver(null, {})
    expect(await read(file(body, 'csv', byDefault))).toMatchObject([
      { email: 'a@example.com', memberId: 'm_1', firstName: 'Ann', fields: {} },
    ])
    expect(byDefault.columns()).toEqual([
      { name: 'Email Address', field: 'email' },
      { name: 'ID', field: 'member_id' },
      { name: 'First Name', field: 'first_name' },
      { name: 'Company', field: null },
    ])
    const sent = new ColumnResolver({ 'Email Address': 'email', ID: 'member_id', Company: 'mk_company' }, { 'First Name': 'first_name' })
    expect(await read(file(body, 'csv', sent))).toMatchObject([{ firstName: null, fields: { mk_company: 'Acme' } }])
    const remembered = new ColumnResolver(null, { Company: 'mk_company', 'First Name': null })
    expect(await read(file(body, 'csv', remembered))).toMatchObject([{ firstName: null, fields: { mk_company: 'Acme' } }])
    expect(remembered.toRemember()).toEqual({ 'Email Address': 'email', ID: 'member_id', 'First Name': null, Company: 'mk_company' })
  })

  it('ignores a column whose name no mapping can hold (a control character, over 200 characters), and never remembers it', async () => {
    const columns = new ColumnResolver(null, {})
    const long = `mk_${'x'.repeat(60)}`.padEnd(201, 'y')
    const line = JSON.stringify({ email: 'a@example.com', member_id: 'm_1', 'mk_a\u0000b': 'x', [long]: 'y' })
    expect(await read(file(`${line}\n`, 'jsonl', columns))).toMatchObject([{ fields: {} }])
    expect(columns.columns()).toEqual([
      { name: 'email', field: 'email' },
      { name: 'member_id', field: 'member_id' },
    ])
    expect(Object.keys(columns.toRemember())).toEqual(['email', 'member_id'])
  })

  it('refuses a CSV whose columns fill no email or member_id, or fill one field twice, listing the columns', async () => {
    await expect(read(file('mail,ID\na@example.com,m_1\n', 'csv'))).rejects.toMatchObject({
      status: 400,
      code: 'missing_column',
      columns: [
        { name: 'mail', field: null },
        { name: 'ID', field: 'member_id' },
      ],
    })
    await expect(read(file('email,E-mail,member_id\na@example.com,b@example.com,m_1\n', 'csv'))).rejects.toMatchObject({
      status: 400,
      code: 'invalid_column_mapping',
      columns: [
        { name: 'email', field: 'email' },
        { name: 'E-mail', field: 'email' },
      ],
    })
  })

  it('refuses members with an unknown subscription status, and duplicates by normalised email', () => {
    const checker = new RowChecker()
    expect(checker.check({ line: 2, values: { email: 'A@Example.com ', member_id: 'm_1' } })).toMatchObject({
      email: 'a@example.com',
      memberId: 'm_1',
    })
    expect(checker.check({ line: 3, values: { email: 'a@example.com', member_id: 'm_2' } })).toMatchObject({
      reason: 'duplicate email: line 2 has the same address',
    })
    expect(checker.check({ line: 4, values: { email: 'b@example.com', member_id: 'm_3', subscription_status: 'frozen' } })).toMatchObject({
      reason: 'subscription_status "frozen" is not one of active, trialing, past_due, canceled, cancelled, expired',
    })
  })

  it('reads the consent column as true/false/yes/no/1/0 (empty: not known) with its time, and refuses anything else in words', async () => {
    const body = [
      'email,member_id,Marketing Consent,consent_at',
      'a@example.com,m_1,Yes,2026-11-22T05:00:00+01:00',
      'b@example.com,m_2,0,',
      'c@example.com,m_3,,2026-11-22',
      'd@example.com,m_4,maybe,',
      'e@example.com,m_5,true,yesterday',
      'f@example.com,m_6,TRUE,2026-11-22',
    ].join('\n')
    const rows = await read(file(body, 'csv'))
    expect(rows.map((r) => ('reason' in r ? r.reason : r.consent))).toEqual([
      { marketing: true, at: '2026-11-22T04:00:00.000Z' },
      { marketing: false, at: null },
      null,
      'consent "maybe" is not one of true, false, yes, no, 1, 0 (leave it empty when not known)',
      'consent_at "yesterday" is not an RFC 3339 time such as 2026-11-22T05:00:00Z',
      { marketing: true, at: '2026-11-22T00:00:00.000Z' },
    ])
  })

  it('takes true and false as JSON in a JSON Lines consent, and null as not known', async () => {
    const body = [
      '{"email":"a@example.com","member_id":"m_1","consent":true}',
      '{"email":"b@example.com","member_id":"m_2","consent":false,"consent_at":"2026-11-22T05:00:00Z"}',
      '{"email":"c@example.com","member_id":"m_3","consent":null}',
    ].join('\n')
    expect((await read(file(body, 'jsonl'))).map((r) => ('reason' in r ? r.reason : r.consent))).toEqual([
      { marketing: true, at: null },
      { marketing: false, at: '2026-11-22T05:00:00.000Z' },
      null,
    ])
  })
})
