// Over 400 lines: every settings route with its validation and its other-community case, through one built app.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Config } from '../server/config.ts'
import { asA, asB, PipelineHarness } from './helpers/pipeline.ts'
import { auth, tokenFor } from './helpers/tokens.ts'

const KEY_A = 'kit_live_key_alpha_0001'
const KEY_B = 'kit_live_key_bravo_0002'

let h: PipelineHarness

async function start(config: Partial<Config> = {}) {
  h = await PipelineHarness.start({ kit: { apiKeys: [KEY_A, KEY_B] }, config })
  h.kit.seed(KEY_A, {
    tags: ['New Member', 'Active Member', 'VIP'],
    customFields: ['Subscription plan'],
    forms: [{ name: 'Newsletter' }, { name: 'Old form', archived: true }],
    sequences: [{ name: 'Welcome' }],
  })
}

beforeEach(async () => {
  await start()
})

afterEach(async () => {
  await h.close()
})

describe('connection', () => {
  it('starts disconnected', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })
    expect(res.json()).toEqual({ connected: false, status: 'disconnected', key_hint: null, account: null, updated_at: null })
  })

  it('checks the key with Kit, stores it and shows only a hint', async () => {
    const res = await h.putConnection(asA, KEY_A)
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ connected: true, status: 'connected', key_hint: '…0001' })
    expect(body.account).toMatchObject({ name: expect.any(String), primary_email_address: expect.any(String) })
    expect(JSON.stringify(body)).not.toContain(KEY_A)
    const again = await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })
    expect(again.json()).toEqual(body)
  })

  it('answers 422 kit_rejected_key with where to find a v4 key, and saves nothing', async () => {
    const res = await h.putConnection(asA, 'kit_wrong_key_9999')
    expect(res.statusCode).toBe(422)
    expect(res.json().error.code).toBe('kit_rejected_key')
    expect(res.json().error.message).toMatch(/Settings › Developer › API keys/)
    const after = await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })
    expect(after.json().status).toBe('disconnected')
  })

  it('answers 502 kit_unreachable when Kit is down, and saves nothing', async () => {
    h.kit.injectNext(10, { status: 500, body: '<html><body>Oops</body></html>', contentType: 'text/html' })
    const res = await h.putConnection(asA, KEY_A)
    expect(res.statusCode).toBe(502)
    expect(res.json().error.code).toBe('kit_unreachable')
    expect(res.body).not.toContain('<html>')
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json().connected).toBe(false)
  })

  it('refuses a body without api_key, naming it', async () => {
    const res = await h.app.inject({ method: 'PUT', url: '/api/v1/connection', headers: asA, payload: {} })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(/api_key/)
  })

  it('disconnects', async () => {
    await h.putConnection(asA, KEY_A)
    const res = await h.app.inject({ method: 'DELETE', url: '/api/v1/connection', headers: asA })
    expect(res.statusCode).toBe(204)
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json().status).toBe('disconnected')
  })

  it('never writes the key in plaintext: not in answers, logs or database bytes', async () => {
    await h.putConnection(asA, KEY_A)
    await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })
    await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    await h.putConnection(asA, 'kit_wrong_key_9999')
    expect(h.logs.join('\n')).not.toContain(KEY_A)
    expect(h.logs.join('\n')).not.toContain('kit_wrong_key_9999')
    expect(h.app.sqlite.serialize().includes(Buffer.from(KEY_A))).toBe(false)
    const row = h.app.sqlite.prepare('SELECT * FROM connections').get() as Record<string, unknown>
    expect(JSON.stringify(row)).not.toContain(KEY_A)
  })

  it('never logs session tokens, even at trace level', async () => {
    await h.close()
    await start({ logLevel: 'trace' })
    const token = tokenFor('c_alpha')
    await h.app.inject({ method: 'PUT', url: '/api/v1/connection', headers: auth(token), payload: { api_key: KEY_A } })
    await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: auth(token) })
    expect(h.logs.length).toBeGreaterThan(0)
    expect(h.logs.join('\n')).not.toContain(token.split('.')[2])
    expect(h.logs.join('\n')).not.toContain(KEY_A)
  })

  it('redacts secrets from anything logged', async () => {
    h.app.log.info({ api_key: KEY_A, token: 'tok_secret', nested: { apiKey: KEY_A }, headers: { authorization: 'Bearer x.y.z' } }, 'probe')
    const line = h.logs.find((l) => l.includes('"probe"')) as string
    expect(line).toBeDefined()
    expect(line).not.toContain(KEY_A)
    expect(line).not.toContain('tok_secret')
    expect(line).not.toContain('x.y.z')
    expect(line).toContain('[redacted]')
  })

  it('marks the connection invalid when Kit stops accepting the key', async () => {
    await h.putConnection(asA, KEY_A)
    h.kit.revokeKey(KEY_A)
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    expect(res.statusCode).toBe(409)
    expect(res.json().error.code).toBe('connection_invalid')
    const conn = (await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()
    expect(conn).toMatchObject({ connected: false, status: 'invalid', key_hint: '…0001' })
  })
})

describe('test connection', () => {
  it('reports the account, latency and whether each mapped item still exists', async () => {
    await h.putConnection(asA, KEY_A)
    const forms = (await h.app.inject({ method: 'GET', url: '/api/v1/kit/forms', headers: asA })).json().items
    // Active forms to pick from, and the archived ones flagged (the pickers never offer them).
    expect(forms.map((f: { name: string; archived: boolean }) => [f.name, f.archived])).toEqual([
      ['Newsletter', false],
      ['Old form', true],
    ])
    // Archived in Kit after it was mapped: Test connection reports it.
    const oldForm = h.kit.account(KEY_A).forms.find((f) => f.name === 'Old form')!
    const tags = (await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })).json().items
    const vip = tags.find((t: { name: string }) => t.name === 'VIP')
    const mappings = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    mappings.events['user.signed_up'].add_to_forms = [...forms, oldForm].map((f: { id: number; name: string }) => ({
      id: f.id,
      name: f.name,
    }))
    mappings.events['user.signed_up'].add_to_sequences = [{ id: 999999, name: 'Gone' }]
    mappings.events['user.updated'].add_tags = [
      { id: vip.id, name: 'VIP' },
      { id: 424242, name: 'Deleted tag' },
    ]
    expect((await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: mappings })).statusCode).toBe(200)

    const res = await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.ok).toBe(true)
    expect(body.latency_ms).toBeGreaterThanOrEqual(0)
    const byName = (name: string) => body.checks.find((c: { name: string }) => c.name === name)
    expect(byName('New Member')).toMatchObject({ kind: 'tag', status: 'ok', used_by: ['user.signed_up'] })
    expect(byName('Cancelled')).toMatchObject({ kind: 'tag', status: 'created_on_first_use' })
    expect(byName('Access: {{access.level}}')).toMatchObject({
      status: 'created_on_first_use',
      used_by: ['access.granted', 'access.revoked'],
    })
    expect(byName('Deleted tag')).toMatchObject({ status: 'missing' })
    expect(byName('VIP')).toMatchObject({ status: 'ok' })
    expect(byName('Newsletter')).toMatchObject({ kind: 'form', status: 'ok' })
    expect(byName('Old form')).toMatchObject({ kind: 'form', status: 'missing', message: expect.stringMatching(/archived in Kit/) })
    expect(byName('Gone')).toMatchObject({ kind: 'sequence', status: 'missing' })
    expect(byName('Subscription plan')).toMatchObject({ kind: 'custom_field', status: 'ok' })
    expect(byName('Access level')).toMatchObject({ kind: 'custom_field', status: 'created_on_first_use' })
  })

  it('reports a mapped sequence that Kit holds inactive before any event fails on it', async () => {
    h.kit.seed(KEY_A, { sequences: [{ name: 'Win-back', active: false }] })
    await h.putConnection(asA, KEY_A)
    const sequences = (await h.app.inject({ method: 'GET', url: '/api/v1/kit/sequences', headers: asA })).json().items
    expect(sequences.map((s: { name: string }) => s.name)).toEqual(['Welcome', 'Win-back'])
    const mappings = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    mappings.events['subscription.canceled'].add_to_sequences = sequences.map((s: { id: number; name: string }) => ({
      id: s.id,
      name: s.name,
    }))
    expect((await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: mappings })).statusCode).toBe(200)
    const body = (await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })).json()
    const byName = (name: string) => body.checks.find((c: { name: string }) => c.name === name)
    expect(byName('Welcome')).toMatchObject({ kind: 'sequence', status: 'ok' })
    expect(byName('Win-back')).toMatchObject({
      kind: 'sequence',
      status: 'missing',
      used_by: ['subscription.canceled'],
      message: expect.stringMatching(/inactive/),
    })
  })

  it('checks a mapped field by its label, as deliveries write it, whatever key the panel guessed', async () => {
    h.kit.seed(KEY_A, { customFields: ['Straße'] })
    await h.putConnection(asA, KEY_A)
    const mappings = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    mappings.fields.push({ source: 'mk_street', kit_field: { key: 'strae', label: 'Straße' } })
    expect((await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: mappings })).statusCode).toBe(200)
    const body = (await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })).json()
    const check = body.checks.find((c: { name: string }) => c.name === 'Straße')
    const kitKey = h.kit.account(KEY_A).customFields.find((f) => f.label === 'Straße')!.key
    expect(check).toMatchObject({ kind: 'custom_field', status: 'ok', message: expect.stringContaining(kitKey) })
  })

  it('answers ok:false in words when not connected or when Kit rejects the key', async () => {
    const none = (await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })).json()
    expect(none).toMatchObject({ ok: false, error: { code: 'not_connected' } })
    await h.putConnection(asA, KEY_A)
    h.kit.revokeKey(KEY_A)
    const revoked = (await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asA })).json()
    expect(revoked).toMatchObject({ ok: false, error: { code: 'connection_invalid' } })
  })
})

describe('mappings', () => {
  it('gives the defaults to a community that never saved', async () => {
    const body = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    expect(body.events['user.signed_up'].add_tags).toEqual([{ name: 'New Member' }])
    expect(body.events['subscription.started']).toMatchObject({
      add_tags: [{ name: 'Active Member' }],
      remove_tags: [{ name: 'Cancelled' }],
    })
    expect(body.events['subscription.canceled']).toMatchObject({
      add_tags: [{ name: 'Cancelled' }],
      remove_tags: [{ name: 'Active Member' }],
    })
    expect(body.events['access.granted'].add_tags).toEqual([{ name: 'Access: {{access.level}}' }])
    expect(body.events['access.revoked'].remove_tags).toEqual([{ name: 'Access: {{access.level}}' }])
    expect(body.fields).toEqual([
      { source: 'mk_subscription_plan', kit_field: { key: 'subscription_plan', label: 'Subscription plan' } },
      { source: 'mk_access_level', kit_field: { key: 'access_level', label: 'Access level' } },
    ])
  })

  it('saves and returns a document', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    doc.events['subscription.started'].add_tags.push({ id: 7, name: 'Plan {{subscription.plan}}' })
    doc.events['user.updated'].add_tags.push({ name: 'Country {{ member.fields.mk_country }}' })
    doc.events['user.deleted'].unsubscribe = true
    const put = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
    expect(put.statusCode).toBe(200)
    const got = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    expect(got).toEqual(doc)
  })

  const invalidCases: [string, (doc: any) => void, RegExp][] = [
    [
      'a field source without mk_',
      (d) => d.fields.push({ source: 'plan', kit_field: { key: 'plan', label: 'Plan' } }),
      /fields\.2\.source/,
    ],
    ['an unknown event type', (d) => (d.events['user.exploded'] = d.events['user.updated']), /user\.exploded/],
    ['a blank tag name', (d) => d.events['user.updated'].add_tags.push({ name: '   ' }), /events\.user\.updated\.add_tags\[0\]\.name/],
    ['a tag name over 255 characters', (d) => d.events['user.updated'].add_tags.push({ name: 'x'.repeat(256) }), /add_tags\.0\.name/],
    [
      'more than 50 tags in a list',
      (d) => (d.events['user.updated'].add_tags = Array.from({ length: 51 }, (_, i) => ({ name: `t${i}` }))),
      /add_tags/,
    ],
    ['an unknown placeholder', (d) => d.events['user.updated'].add_tags.push({ name: 'Plan {{member.email}}' }), /unknown placeholder/],
    [
      'a placeholder that is never closed',
      (d) => d.events['access.granted'].add_tags.push({ name: 'Level {{access.level' }),
      /add_tags\[1\]\.name "Level \{\{access\.level" opens a placeholder .* never closed/,
    ],
    [
      'a closed placeholder followed by an unclosed one',
      (d) => d.events['access.granted'].add_tags.push({ name: '{{access.level}} {{' }),
      /never closed/,
    ],
    ['a source mapped twice', (d) => d.fields.push({ ...d.fields[0] }), /mapped twice/],
  ]
  for (const [what, mutate, message] of invalidCases) {
    it(`refuses ${what}, names it and changes nothing`, async () => {
      const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
      const before = JSON.stringify(doc)
      mutate(doc)
      const res = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.message).toMatch(message)
      const after = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
      expect(JSON.stringify(after)).toBe(before)
    })
  }

  const controlCases: [string, (doc: any) => void, string][] = [
    [
      'a tag name with a line feed',
      (d) => d.events['user.signed_up'].add_tags.push({ name: 'VIP\nBcc: all' }),
      'events.user.signed_up.add_tags[1].name',
    ],
    [
      'a tag name with a carriage return',
      (d) => d.events['subscription.canceled'].remove_tags.push({ name: 'Gone\r' }),
      'events.subscription.canceled.remove_tags[1].name',
    ],
    [
      'a form name with a line feed',
      (d) => d.events['user.signed_up'].add_to_forms.push({ id: 3, name: 'News\nletter' }),
      'events.user.signed_up.add_to_forms[0].name',
    ],
    [
      'a sequence name with a tab',
      (d) => d.events['user.signed_up'].add_to_sequences.push({ id: 4, name: 'Wel\tcome' }),
      'events.user.signed_up.add_to_sequences[0].name',
    ],
    ['a Kit field label with a line feed', (d) => (d.fields[1].kit_field.label = 'Access\nlevel'), 'fields[1].kit_field.label'],
  ]
  // NUL is refused for every request before any route sees it (tests/nul-characters.test.ts), naming the part too.
  const nulCases: [string, (doc: any) => void, string][] = [
    [
      'a tag name with NUL',
      (d) => d.events['user.updated'].add_tags.push({ name: 'A\u0000B' }),
      'body.events.user.updated.add_tags[0].name',
    ],
    ['a Kit field key with NUL', (d) => (d.fields[0].kit_field.key = 'plan\u0000x'), 'body.fields[0].kit_field.key'],
  ]
  for (const [what, mutate, part] of nulCases) {
    it(`refuses ${what} with 400 naming the part, and changes nothing`, async () => {
      const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
      const before = JSON.stringify(doc)
      mutate(doc)
      const res = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe('nul_character')
      expect(res.json().error.message).toContain(part)
      const after = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
      expect(JSON.stringify(after)).toBe(before)
    })
  }
  for (const [what, mutate, part] of controlCases) {
    it(`refuses ${what} with 400 naming the part, and changes nothing`, async () => {
      const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
      const before = JSON.stringify(doc)
      mutate(doc)
      const res = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toEqual({ code: 'invalid_mappings', message: `${part} must not contain line breaks or control characters` })
      const after = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
      expect(JSON.stringify(after)).toBe(before)
    })
  }

  it('accepts names in any script, with bidirectional marks', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    doc.events['user.signed_up'].add_tags.push({ name: '\u05d7\u05d1\u05e8 \u200fVIP' })
    const put = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
    expect(put.statusCode).toBe(200)
  })
  const getDoc = async (headers = asA) => (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers })).json()

  it('refuses a PUT without some event types, naming each one, and empties nothing', async () => {
    const doc = await getDoc()
    doc.events['user.updated'].add_tags.push({ name: 'Changed' })
    const before = JSON.stringify(await getDoc())
    const partial = { events: { 'user.updated': doc.events['user.updated'] }, fields: doc.fields }
    const res = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: partial })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('invalid_mappings')
    const message: string = res.json().error.message
    for (const type of [
      'user.signed_up',
      'user.deleted',
      'subscription.started',
      'subscription.canceled',
      'access.granted',
      'access.revoked',
    ]) {
      expect(message).toContain(type)
    }
    expect(message).not.toMatch(/missing[^:]*user\.updated/)
    expect(message).toMatch(/PATCH \/mappings/)
    expect(JSON.stringify(await getDoc())).toBe(before)
  })

  it('merges a PATCH: the event types given are replaced, the others and the fields stay as saved', async () => {
    const saved = await getDoc()
    saved.events['user.deleted'].unsubscribe = true
    expect((await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: saved })).statusCode).toBe(200)

    const change = {
      events: {
        'user.updated': {
          add_tags: [{ name: 'Profile changed' }],
          remove_tags: [],
          add_to_forms: [],
          add_to_sequences: [],
          unsubscribe: false,
        },
      },
    }
    const res = await h.app.inject({ method: 'PATCH', url: '/api/v1/mappings', headers: asA, payload: change })
    expect(res.statusCode).toBe(200)
    const expected = { ...saved, events: { ...saved.events, 'user.updated': change.events['user.updated'] } }
    expect(res.json()).toEqual(expected)
    expect(await getDoc()).toEqual(expected)

    const fields = [{ source: 'mk_country', kit_field: { key: 'country', label: 'Country' } }]
    const onlyFields = await h.app.inject({ method: 'PATCH', url: '/api/v1/mappings', headers: asA, payload: { fields } })
    expect(onlyFields.json()).toEqual({ ...expected, fields })
    expect((await getDoc(asB)).events['user.updated'].add_tags).toEqual([])
  })

  it('refuses a PATCH without a session token', async () => {
    const res = await h.app.inject({ method: 'PATCH', url: '/api/v1/mappings', payload: { fields: [] } })
    expect(res.statusCode).toBe(401)
  })

  it('checks a PATCHed document like a PUT and saves nothing when it is refused', async () => {
    const before = JSON.stringify(await getDoc())
    const change = {
      events: {
        'user.signed_up': {
          add_tags: [{ name: 'Plan {{subscription.plan}}' }],
          remove_tags: [],
          add_to_forms: [],
          add_to_sequences: [],
          unsubscribe: false,
        },
      },
    }
    const res = await h.app.inject({ method: 'PATCH', url: '/api/v1/mappings', headers: asA, payload: change })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(
      /^events\.user\.signed_up\.add_tags\[0\]\.name \{\{subscription\.plan\}\} is never filled for user\.signed_up/,
    )
    const unknown = await h.app.inject({
      method: 'PATCH',
      url: '/api/v1/mappings',
      headers: asA,
      payload: { events: { 'user.exploded': change.events['user.signed_up'] } },
    })
    expect(unknown.statusCode).toBe(400)
    expect(JSON.stringify(await getDoc())).toBe(before)
  })

  it('refuses a placeholder the event type never carries, naming the tag', async () => {
    const doc = await getDoc()
    doc.events['user.signed_up'].add_tags.push({ name: 'Level {{access.level}}' })
    const res = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toBe(
      'events.user.signed_up.add_tags[1].name {{access.level}} is never filled for user.signed_up, so the tag would never be applied; use {{member.fields.mk_…}}',
    )
    const fine = await getDoc()
    fine.events['access.revoked'].add_tags.push({ name: 'Lost {{ access.level }} ({{member.fields.mk_country}})' })
    expect((await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: fine })).statusCode).toBe(200)
  })

  it('refuses the same tag in Add and Remove of one event', async () => {
    const doc = await getDoc()
    doc.events['subscription.started'].remove_tags.push({ name: 'active member' })
    const res = await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: doc })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toBe(
      'events.subscription.started.remove_tags[1].name "active member" is also in add_tags of subscription.started; keep it in one of the two lists',
    )
  })

  it('describes GET, PUT and PATCH /mappings in the OpenAPI document', async () => {
    const doc = (await h.app.inject('/docs/openapi.json')).json()
    const path = doc.paths['/api/v1/mappings']
    expect(Object.keys(path).sort()).toEqual(['get', 'patch', 'put'])
    expect(path.get.operationId).toBe('getMappings')
    expect(path.put).toMatchObject({ operationId: 'replaceMappings', summary: expect.stringMatching(/whole/) })
    expect(path.patch).toMatchObject({ operationId: 'updateMappings', summary: expect.any(String) })
    expect(path.patch.description).toMatch(/left out stays as saved/)
    expect(path.put.responses['200'].description).toMatch(/saved document/)
    expect(path.patch.responses['400'].description).toMatch(/names the part/)
  })
})

describe('Kit lookups', () => {
  it('says to connect first when there is no connection', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    expect(res.statusCode).toBe(409)
    expect(res.json().error.code).toBe('not_connected')
  })

  it('lists tags, custom fields, forms and sequences from the connected account', async () => {
    await h.putConnection(asA, KEY_A)
    const get = async (path: string) => (await h.app.inject({ method: 'GET', url: `/api/v1/kit/${path}`, headers: asA })).json().items
    expect((await get('tags')).map((t: { name: string }) => t.name).sort()).toEqual(['Active Member', 'New Member', 'VIP'])
    expect(await get('custom-fields')).toEqual([expect.objectContaining({ key: 'subscription_plan', label: 'Subscription plan' })])
    expect((await get('forms')).map((f: { name: string }) => f.name)).toContain('Newsletter')
    expect((await get('sequences')).map((s: { name: string }) => s.name)).toEqual(['Welcome'])
  })

  it('caches lists briefly and refreshes tags after creating one', async () => {
    await h.putConnection(asA, KEY_A)
    await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA })
    expect(h.kit.requests.filter((r) => r.path === '/v4/tags' && r.method === 'GET')).toHaveLength(1)
    const created = await h.app.inject({ method: 'POST', url: '/api/v1/kit/tags', headers: asA, payload: { name: 'Beta testers' } })
    expect(created.statusCode).toBe(201)
    expect(created.json()).toMatchObject({ id: expect.any(Number), name: 'Beta testers' })
    const existing = await h.app.inject({ method: 'POST', url: '/api/v1/kit/tags', headers: asA, payload: { name: 'VIP' } })
    expect(existing.statusCode).toBe(200)
    const names = (await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asA }))
      .json()
      .items.map((t: { name: string }) => t.name)
    expect(names).toContain('Beta testers')
  })

  it('refuses a blank tag name', async () => {
    await h.putConnection(asA, KEY_A)
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/kit/tags', headers: asA, payload: { name: '  ' } })
    expect(res.statusCode).toBe(400)
  })

  it('refuses a tag name with a line break or NUL, creating nothing in Kit', async () => {
    await h.putConnection(asA, KEY_A)
    for (const name of ['VIP\r\nBcc: all', 'VIP\u0000', 'VIP\u0085']) {
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/kit/tags', headers: asA, payload: { name } })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe(name.includes('\u0000') ? 'nul_character' : 'invalid_request')
      expect(res.json().error.message).toMatch(/^body\.name /)
    }
    expect(h.kit.requests.filter((r) => r.path === '/v4/tags' && r.method === 'POST')).toHaveLength(0)
    expect(
      h.kit
        .account(KEY_A)
        .tags.map((t) => t.name)
        .sort(),
    ).toEqual(['Active Member', 'New Member', 'VIP'])
  })
})

describe('tenancy', () => {
  it('community B cannot read or change community A', async () => {
    await h.putConnection(asA, KEY_A)
    const docA = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json()
    docA.events['user.updated'].add_tags = [{ name: 'Only A' }]
    await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asA, payload: docA })

    expect((await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asB })).json().status).toBe('disconnected')
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asB })).json().events['user.updated'].add_tags).toEqual(
      [],
    )
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asB })).statusCode).toBe(409)
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/kit/tags', headers: asB, payload: { name: 'x' } })).statusCode).toBe(409)
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/connection/test', headers: asB })).json().ok).toBe(false)

    await h.putConnection(asB, KEY_B)
    await h.app.inject({ method: 'DELETE', url: '/api/v1/connection', headers: asB })
    const bDoc = (await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asB })).json()
    bDoc.events['user.updated'].add_tags = [{ name: 'Only B' }]
    await h.app.inject({ method: 'PUT', url: '/api/v1/mappings', headers: asB, payload: bDoc })

    const connA = (await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()
    expect(connA).toMatchObject({ status: 'connected', key_hint: '…0001' })
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/mappings', headers: asA })).json().events['user.updated'].add_tags).toEqual([
      { name: 'Only A' },
    ])
  })

  it('a ciphertext copied to another community does not decrypt there', async () => {
    await h.putConnection(asA, KEY_A)
    const row = h.app.sqlite.prepare('SELECT * FROM connections WHERE community_id = ?').get('c_alpha') as Record<string, unknown>
    h.app.sqlite
      .prepare(
        'INSERT INTO connections (community_id, api_key_ciphertext, key_hint, status, account_json, credential_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run('c_bravo', row.api_key_ciphertext, row.key_hint, row.status, row.account_json, row.credential_id, row.created_at, row.updated_at)
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/kit/tags', headers: asB })
    expect(res.statusCode).toBe(409)
    expect(res.json().error).toMatchObject({
      code: 'connection_invalid',
      message: expect.stringMatching(/can no longer be read — paste the key again/),
    })
    expect(res.body).not.toMatch(/stack|tag length|kit_live/i)
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asB })).json()).toMatchObject({ status: 'invalid' })
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/connection', headers: asA })).json()).toMatchObject({ status: 'connected' })
  })
})

describe('consent', () => {
  const getConsent = (headers = asA) => h.app.inject({ method: 'GET', url: '/api/v1/consent', headers })
  const putConsent = (payload: unknown, headers = asA) =>
    h.app.inject({ method: 'PUT', url: '/api/v1/consent', headers, payload: payload as Record<string, unknown> })

  it('gives every member by default, never saved', async () => {
    const res = await getConsent()
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ mode: 'all_members', updated_at: null })
  })

  it('saves a choice and answers it with when it was saved', async () => {
    const put = await putConsent({ mode: 'marketing_consent' })
    expect(put.statusCode).toBe(200)
    expect(put.json()).toEqual({ mode: 'marketing_consent', updated_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/) })
    expect((await getConsent()).json()).toEqual(put.json())
    expect((await putConsent({ mode: 'all_members' })).json().mode).toBe('all_members')
    expect((await getConsent()).json().mode).toBe('all_members')
  })

  it("never shows or changes another community's choice", async () => {
    expect((await putConsent({ mode: 'marketing_consent' }, asA)).statusCode).toBe(200)
    expect((await getConsent(asB)).json()).toEqual({ mode: 'all_members', updated_at: null })
    expect((await putConsent({ mode: 'all_members' }, asB)).statusCode).toBe(200)
    expect((await getConsent(asA)).json().mode).toBe('marketing_consent')
  })

  it.each([
    ['an unknown mode', { mode: 'everyone' }, 'body.mode must be one of: all_members, marketing_consent'],
    ['no mode', {}, 'body is missing "mode"'],
    ['an unknown property', { mode: 'all_members', opt_in: true }, 'body has an unknown property "opt_in"'],
  ])('refuses %s with 400 naming the part, and changes nothing', async (_what, payload, message) => {
    const res = await putConsent(payload)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ error: { code: 'invalid_request', message } })
    expect((await getConsent()).json()).toEqual({ mode: 'all_members', updated_at: null })
  })

  it('requires a session token of an owner or admin', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/consent' })).statusCode).toBe(401)
    const member = auth(tokenFor('c_alpha', ['member']))
    const res = await putConsent({ mode: 'marketing_consent' }, member)
    expect(res.statusCode).toBe(403)
    expect(res.json().error.code).toBe('forbidden')
    expect((await getConsent()).json().mode).toBe('all_members')
  })
})

describe('operations', () => {
  it('serves health, readiness and an OpenAPI description', async () => {
    expect((await h.app.inject('/healthz')).json()).toEqual({ status: 'ok' })
    const ready = await h.app.inject('/readyz')
    expect(ready.statusCode).toBe(200)
    expect(ready.json().checks).toEqual({ database: 'ok', migrations: 'ok' })
    const doc = (await h.app.inject('/docs/openapi.json')).json()
    expect(doc.openapi).toMatch(/^3\./)
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/connection', '/api/v1/mappings', '/api/v1/kit/tags', '/events', '/healthz']),
    )
  })

  it('answers unknown paths with a JSON 404', async () => {
    const res = await h.app.inject('/api/v1/nothing-here')
    expect(res.statusCode).toBe(404)
    expect(res.json().error.code).toBe('not_found')
  })
})
