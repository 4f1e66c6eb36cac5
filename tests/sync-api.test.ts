// Over 400 lines: the initial sync's routes: upload, preview, column mapping, pause, resume, cancel, each scoped by community.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { asA, asB, KEY_B, PipelineHarness } from './helpers/pipeline.ts'
import type { Config } from '../server/config.ts'

let h: PipelineHarness

/** The app with its consumer stopped: what a sync queues stays queued. */
async function setup(config: Partial<Config> = {}) {
  h = await PipelineHarness.start({ config, pipeline: { autoStart: false } })
}

beforeEach(async () => {
  await setup()
})
afterEach(async () => {
  await h.close()
})

const upload = (body: string, { type = 'text/csv', dryRun = false, headers = asA } = {}) =>
  h.app.inject({
    method: 'POST',
    url: `/api/v1/syncs${dryRun ? '?dry_run=true' : ''}`,
    headers: { ...headers, 'content-type': type },
    payload: body,
  })

const count = (sql: string, ...params: unknown[]) => (h.app.sqlite.prepare(sql).get(...params) as { n: number }).n
const queued = () => count('SELECT count(*) AS n FROM deliveries') + count('SELECT count(*) AS n FROM syncs')
const kitWrites = () => h.kit.requests.filter((r) => r.method !== 'GET').length

const csv = (...lines: string[]) => `${lines.join('\n')}\n`

/** Tells the plugin it already wrote this member to Kit (as a delivery would have). */
async function knownMember(memberId: string, email: string, firstName: string | null, fields: Record<string, string> = {}) {
  const credential = await h.app.services.connections.credential('c_alpha')
  if (!credential) throw new Error('connect first')
  h.app.sqlite
    .prepare(
      `INSERT INTO kit_subscribers (community_id, credential_id, member_id, email, subscriber_id, first_name, fields, updated_at)
       VALUES ('c_alpha', ?, ?, ?, 1, ?, ?, 0)`,
    )
    .run(credential.credentialId, memberId, email, firstName, JSON.stringify(fields))
}

describe('dry run', () => {
  it('counts subscribers to create, update and leave unchanged from what the plugin last wrote, without any Kit request', async () => {
    await h.connect()
    await knownMember('m_same', 'same@example.com', 'Sam')
    await knownMember('m_new_name', 'rename@example.com', 'Old')
    const before = h.kit.requests.length
    const res = await upload(
      csv(
        'email,member_id,first_name,access_level',
        'same@example.com,m_same,Sam,',
        'rename@example.com,m_new_name,New,gold',
        'fresh@example.com,m_fresh,Fay,gold',
      ),
      { dryRun: true },
    )
    expect(res.statusCode).toBe(200)
    const plan = res.json()
    expect(plan.accepted).toBe(3)
    expect(plan.subscribers.create).toEqual({ count: 1, examples: ['fresh@example.com'] })
    expect(plan.subscribers.update).toEqual({ count: 1, examples: ['rename@example.com'] })
    expect(plan.subscribers.unchanged).toEqual({ count: 1, examples: ['same@example.com'] })
    // The default access.granted mapping's tag, filled from each member's access level.
    expect(plan.tags_added).toEqual([{ name: 'Access: gold', count: 2, examples: ['rename@example.com', 'fresh@example.com'] }])
    expect(h.kit.requests.length).toBe(before)
    expect(queued()).toBe(0)
  })

  it('lists refused rows with the reason: bad email, duplicate email, duplicate member id', async () => {
    await h.connect()
    const res = await upload(
      csv('email,member_id', 'ok@example.com,m_1', 'not-an-email,m_2', 'OK@example.com,m_3', 'other@example.com,m_1'),
      { dryRun: true },
    )
    const plan = res.json()
    expect(plan.accepted).toBe(1)
    expect(plan.refused).toBe(3)
    expect(plan.refused_rows).toEqual([
      { line: 3, email: 'not-an-email', member_id: 'm_2', reason: 'email is not an email address' },
      { line: 4, email: 'OK@example.com', member_id: 'm_3', reason: 'duplicate email: line 2 has the same address' },
      { line: 5, email: 'other@example.com', member_id: 'm_1', reason: 'duplicate member_id: line 2 has the same member' },
    ])
  })

  it('a raw export (values spanning lines, columns of its own) is previewed and imported: unknown columns are ignored unless mapped', async () => {
    await h.connect()
    const file = csv(
      'Email Address,ID,First Name,Company,Notes',
      'ann@example.com,m_1,Ann,Acme,"Met at the fair,',
      'asked for ""pricing"""',
      'bob@example.com,m_2,Bob,,',
    )
    const preview = await upload(file, { dryRun: true })
    expect(preview.statusCode).toBe(200)
    expect(preview.json()).toMatchObject({ accepted: 2, refused: 0 })
    expect(preview.json().columns).toEqual([
      { name: 'Email Address', field: 'email' },
      { name: 'ID', field: 'member_id' },
      { name: 'First Name', field: 'first_name' },
      { name: 'Company', field: null },
      { name: 'Notes', field: null },
    ])

    const res = await upload(file)
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ total: 2, refused: 0 })
    const payloads = (h.app.sqlite.prepare('SELECT payload FROM events ORDER BY id').pluck().all() as string[]).map(
      (p) => JSON.parse(p).data.member,
    )
    expect(payloads).toEqual([
      { id: 'm_1', email: 'ann@example.com', first_name: 'Ann' },
      { id: 'm_2', email: 'bob@example.com', first_name: 'Bob' },
    ])
  })

  it('the preview and the import judge every file the same way', async () => {
    await h.connect()
    const files: { body: string; type?: string; columns?: string }[] = [
      { body: csv('email,member_id,nickname', 'a@example.com,m_1,Al') },
      { body: csv('email,member_id,notes', 'a@example.com,m_1,"two', 'lines"') },
      { body: csv('mail,member_id', 'a@example.com,m_1') },
      { body: csv('mail,member_id', 'a@example.com,m_1'), columns: '{"mail":"email","member_id":"member_id"}' },
      { body: csv('email,E-mail,member_id', 'a@example.com,b@example.com,m_1') },
      { body: csv('email,member_id', 'a@example.com,m_1'), columns: '{"email":"nickname"}' },
      { body: csv('email,member_id', '"a@example.com,m_1') },
      { body: csv('email,member_id', 'a@example.com,m_1,extra') },
      { body: csv('email,member_id') },
      {
        body: `${JSON.stringify({ email: 'a@example.com', member_id: 'm_1', profile: { city: 'Oslo' } })}\n`,
        type: 'application/x-ndjson',
      },
      { body: `${JSON.stringify({ email: 'a@example.com', member_id: 'm_1', mk_tags: ['a'] })}\n`, type: 'application/x-ndjson' },
    ]
    const verdicts = []
    for (const f of files) {
      const url = (dryRun: boolean) =>
        `/api/v1/syncs?${new URLSearchParams({ ...(dryRun ? { dry_run: 'true' } : {}), ...(f.columns ? { columns: f.columns } : {}) })}`
      const send = (dryRun: boolean) =>
        h.app.inject({ method: 'POST', url: url(dryRun), headers: { ...asA, 'content-type': f.type ?? 'text/csv' }, payload: f.body })
      const preview = await send(true)
      const real = await send(false)
      const judged = (res: typeof preview) => (res.statusCode < 300 ? 'accepted' : res.json().error.code)
      verdicts.push([judged(preview), judged(real)])
    }
    expect(verdicts.map(([preview]) => preview)).toEqual([
      'accepted',
      'accepted',
      'missing_column',
      'accepted',
      'invalid_column_mapping',
      'invalid_column_mapping',
      'malformed_file',
      'malformed_file',
      'empty_file',
      'accepted',
      'malformed_file',
    ])
    expect(verdicts.map(([, real]) => real)).toEqual(verdicts.map(([preview]) => preview))
  })

  it('a file whose columns fill no email answers with its columns, and mapping them with the upload makes it whole', async () => {
    await h.connect()
    const file = csv('E-mail address,Member,Company', 'ann@example.com,m_1,Acme')
    const refused = await upload(file, { dryRun: true })
    expect(refused.statusCode).toBe(400)
    expect(refused.json().error).toMatchObject({
      code: 'missing_column',
      columns: [
        { name: 'E-mail address', field: null },
        { name: 'Member', field: 'member_id' },
        { name: 'Company', field: null },
      ],
    })
    const columns = JSON.stringify({ 'E-mail address': 'email', Member: 'member_id', Company: 'mk_company' })
    const url = (dryRun: boolean) => `/api/v1/syncs?${new URLSearchParams({ ...(dryRun ? { dry_run: 'true' } : {}), columns })}`
    const mapped = await h.app.inject({ method: 'POST', url: url(true), headers: { ...asA, 'content-type': 'text/csv' }, payload: file })
    expect(mapped.statusCode).toBe(200)
    expect(mapped.json().columns).toEqual([
      { name: 'E-mail address', field: 'email' },
      { name: 'Member', field: 'member_id' },
      { name: 'Company', field: 'mk_company' },
    ])
    const started = await h.app.inject({ method: 'POST', url: url(false), headers: { ...asA, 'content-type': 'text/csv' }, payload: file })
    expect(started.statusCode).toBe(202)
    const payload = JSON.parse(h.app.sqlite.prepare('SELECT payload FROM events').pluck().get() as string)
    expect(payload.data.member).toEqual({ id: 'm_1', email: 'ann@example.com', fields: { mk_company: 'Acme' } })
  })

  it("remembers the mapping of an accepted import for the community's next file, and for no other community", async () => {
    await h.connect()
    await h.connect(asB, KEY_B)
    const header = 'E-mail address,Member,Company'
    const columns = JSON.stringify({ 'E-mail address': 'email', Member: 'member_id', Company: 'mk_company' })
    // A preview alone remembers nothing.
    await h.app.inject({
      method: 'POST',
      url: `/api/v1/syncs?dry_run=true&columns=${encodeURIComponent(columns)}`,
      headers: { ...asA, 'content-type': 'text/csv' },
      payload: csv(header, 'a@example.com,m_1,Acme'),
    })
    expect((await upload(csv(header, 'b@example.com,m_2,Initech'), { dryRun: true })).json().error.code).toBe('missing_column')

    const started = await h.app.inject({
      method: 'POST',
      url: `/api/v1/syncs?columns=${encodeURIComponent(columns)}`,
      headers: { ...asA, 'content-type': 'text/csv' },
      payload: csv(header, 'a@example.com,m_1,Acme'),
    })
    expect(started.statusCode).toBe(202)

    const next = await upload(csv(header, 'b@example.com,m_2,Initech'), { dryRun: true })
    expect(next.statusCode).toBe(200)
    expect(next.json().columns).toEqual([
      { name: 'E-mail address', field: 'email' },
      { name: 'Member', field: 'member_id' },
      { name: 'Company', field: 'mk_company' },
    ])
    const other = await upload(csv(header, 'b@example.com,m_2,Initech'), { dryRun: true, headers: asB })
    expect(other.statusCode).toBe(400)
    expect(other.json().error.columns).toEqual([
      { name: 'E-mail address', field: null },
      { name: 'Member', field: 'member_id' },
      { name: 'Company', field: null },
    ])
  })

  it('refuses a mapping that is not JSON or names something that is not a member field', async () => {
    await h.connect()
    for (const columns of ['{"email"', '["email"]', '{"Company":"company"}']) {
      const res = await h.app.inject({
        method: 'POST',
        url: `/api/v1/syncs?dry_run=true&columns=${encodeURIComponent(columns)}`,
        headers: { ...asA, 'content-type': 'text/csv' },
        payload: csv('email,member_id', 'a@example.com,m_1'),
      })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe('invalid_column_mapping')
    }
  })
})

describe('refused files leave nothing behind', () => {
  it('a malformed CSV line is reported by its line number and nothing is queued', async () => {
    await h.connect()
    const rows = Array.from({ length: 1200 }, (_, i) => `m${i}@example.com,m_${i}`)
    rows.splice(1100, 0, '"broken@example.com,m_broken')
    const res = await upload(csv('email,member_id', ...rows))
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toEqual({
      code: 'malformed_file',
      message:
        'Line 1102: a quoted value is not closed before the end of the file. Fix that line and send the file again; nothing was queued.',
    })
    expect(queued()).toBe(0)
  })

  it('a CSV line with the wrong number of values names its line', async () => {
    await h.connect()
    const res = await upload(csv('email,member_id,first_name', 'a@example.com,m_1,Al', 'b@example.com,m_2'))
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(/^Line 3: it has 2 values but the header names 3 columns/)
  })

  it('a JSON Lines line that is not an object names its line', async () => {
    await h.connect()
    const body = `${JSON.stringify({ email: 'a@example.com', member_id: 'm_1' })}\n\n{"email": "b@example.com",\n`
    const res = await upload(body, { type: 'application/x-ndjson' })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(/^Line 3: it is not valid JSON/)
    expect(queued()).toBe(0)
  })

  it('a file over SYNC_MAX_BYTES gets 413 naming the limit before anything is queued', async () => {
    await h.close()
    await setup({ syncMaxBytes: 4096 })
    await h.connect()
    const rows = Array.from({ length: 400 }, (_, i) => `member${i}@example.com,m_${i}`)
    const res = await upload(csv('email,member_id', ...rows))
    expect(res.statusCode).toBe(413)
    expect(res.json().error.code).toBe('payload_too_large')
    expect(res.json().error.message).toContain('larger than 4096 bytes (SYNC_MAX_BYTES)')
    expect(queued()).toBe(0)
  })

  it('a streamed file over SYNC_MAX_BYTES (no Content-Length) is refused once the limit is crossed', async () => {
    await h.close()
    await setup({ syncMaxBytes: 4096 })
    await h.connect()
    const rows = Array.from({ length: 400 }, (_, i) => `member${i}@example.com,m_${i}`)
    const { Readable } = await import('node:stream')
    const lines = csv('email,member_id', ...rows).split(/(?<=\n)/)
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/syncs',
      headers: { ...asA, 'content-type': 'text/csv', 'transfer-encoding': 'chunked' },
      payload: Readable.from(lines),
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().error.message).toContain('4096 bytes (SYNC_MAX_BYTES)')
    expect(queued()).toBe(0)
  })

  it('more members than SYNC_MAX_ROWS gets 413 naming the limit', async () => {
    await h.close()
    await setup({ syncMaxRows: 10 })
    await h.connect()
    const rows = Array.from({ length: 11 }, (_, i) => `member${i}@example.com,m_${i}`)
    const res = await upload(csv('email,member_id', ...rows))
    expect(res.statusCode).toBe(413)
    expect(res.json().error.message).toContain('more than 10 members (SYNC_MAX_ROWS)')
    expect(queued()).toBe(0)
  })

  it('refuses an empty file, and a CSV with only its header, saying what a file needs', async () => {
    await h.connect()
    for (const body of ['', 'email,member_id\n']) {
      const res = await upload(body)
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe('empty_file')
    }
    expect(queued()).toBe(0)
  })

  it('refuses a file in another format, and a community without a Kit connection', async () => {
    const notConnected = await upload(csv('email,member_id', 'a@example.com,m_1'))
    expect(notConnected.statusCode).toBe(409)
    expect(notConnected.json().error.code).toBe('not_connected')
    await h.connect()
    const json = await upload(JSON.stringify({ email: 'a@example.com' }), { type: 'application/json' })
    expect(json.statusCode).toBe(415)
    expect(queued()).toBe(0)
  })
})

describe('a queued sync', () => {
  it('stores every accepted member as a member.snapshot delivery at the sync start time and reports its progress', async () => {
    await h.connect()
    const res = await upload(
      csv('email,member_id,first_name,mk_plan_note', 'a@example.com,m_a,Ann,vip', 'bad,m_b,,', 'c@example.com,m_c,,'),
    )
    expect(res.statusCode).toBe(202)
    const sync = res.json()
    expect(sync).toMatchObject({ status: 'running', format: 'csv', total: 2, done: 0, remaining: 2, refused: 1, kit_requests: 0 })
    expect(sync.refused_rows).toEqual([{ line: 3, email: 'bad', member_id: 'm_b', reason: 'email is not an email address' }])
    // 2 members at the default budget (120 a minute, 6 kept for the panel): 2 / 114 of a minute.
    expect(sync.estimated_seconds_left).toBe(2)
    const rows = h.app.sqlite
      .prepare(
        `SELECT d.event_type, d.status, d.event_time, d.priority, e.payload FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.sync_id = ? ORDER BY d.seq`,
      )
      .all(sync.id) as { event_type: string; status: string; event_time: number; priority: number; payload: string }[]
    expect(rows.map((r) => [r.event_type, r.status, r.priority])).toEqual([
      ['member.snapshot', 'pending', 1],
      ['member.snapshot', 'pending', 1],
    ])
    expect(rows[0]!.event_time).toBe(Date.parse(sync.started_at))
    expect(JSON.parse(rows[0]!.payload).data.member).toEqual({
      id: 'm_a',
      email: 'a@example.com',
      first_name: 'Ann',
      fields: { mk_plan_note: 'vip' },
    })

    const listed = (await h.app.inject({ method: 'GET', url: '/api/v1/syncs', headers: asA })).json()
    expect(listed.items.map((s: { id: string }) => s.id)).toEqual([sync.id])
  })

  it('pause holds its deliveries, resume lets them go, cancel skips the rest as "sync cancelled"', async () => {
    await h.connect()
    const sync = (await upload(csv('email,member_id', 'a@example.com,m_a', 'b@example.com,m_b'))).json()
    const statuses = () =>
      h.app.sqlite.prepare('SELECT status, reason FROM deliveries WHERE sync_id = ? ORDER BY seq').all(sync.id) as {
        status: string
        reason: string | null
      }[]

    const paused = await h.app.inject({ method: 'POST', url: `/api/v1/syncs/${sync.id}/pause`, headers: asA })
    expect(paused.json()).toMatchObject({ status: 'paused', remaining: 2, estimated_seconds_left: null })
    expect(statuses()).toEqual([
      { status: 'held', reason: 'sync_paused' },
      { status: 'held', reason: 'sync_paused' },
    ])
    expect(await h.app.pipeline.queue.claim({ owner: 'probe', limit: 10, leaseMs: 1000, now: Date.now(), exclude: [] })).toEqual([])
    // Saving a working key again resumes deliveries held for the key, never a paused sync's.
    await h.connect()
    expect(statuses().map((s) => s.status)).toEqual(['held', 'held'])
    expect((await h.app.inject({ method: 'POST', url: `/api/v1/syncs/${sync.id}/pause`, headers: asA })).statusCode).toBe(409)

    const resumed = await h.app.inject({ method: 'POST', url: `/api/v1/syncs/${sync.id}/resume`, headers: asA })
    expect(resumed.json().status).toBe('running')
    expect(statuses().map((s) => s.status)).toEqual(['pending', 'pending'])

    const cancelled = await h.app.inject({ method: 'POST', url: `/api/v1/syncs/${sync.id}/cancel`, headers: asA })
    expect(cancelled.json()).toMatchObject({ status: 'cancelled', skipped: 2, remaining: 0 })
    expect(statuses()).toEqual([
      { status: 'skipped', reason: 'sync_cancelled' },
      { status: 'skipped', reason: 'sync_cancelled' },
    ])
    expect((await h.app.inject({ method: 'POST', url: `/api/v1/syncs/${sync.id}/resume`, headers: asA })).statusCode).toBe(409)
  })

  it('another community cannot see, list, pause, resume or cancel it', async () => {
    await h.connect()
    await h.connect(asB, KEY_B)
    const sync = (await upload(csv('email,member_id', 'a@example.com,m_a'))).json()
    expect((await h.app.inject({ method: 'GET', url: `/api/v1/syncs/${sync.id}`, headers: asB })).statusCode).toBe(404)
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/syncs', headers: asB })).json()).toEqual({ items: [] })
    for (const verb of ['pause', 'resume', 'cancel']) {
      const res = await h.app.inject({ method: 'POST', url: `/api/v1/syncs/${sync.id}/${verb}`, headers: asB })
      expect(res.statusCode).toBe(404)
    }
    expect((await h.app.inject({ method: 'GET', url: `/api/v1/syncs/${sync.id}`, headers: asA })).json().status).toBe('running')
    expect(kitWrites()).toBe(0)
  })
})
