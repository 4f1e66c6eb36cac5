/**
 * A member file with a consent column, with the community taking only members who agreed to
 * marketing email: the preview counts who would be left out, the import leaves them out (no Kit
 * request for them) and keeps a member already in Kit in step.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { asA, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness

beforeEach(async () => {
  h = await PipelineHarness.start({ connected: true })
})
afterEach(async () => {
  await h.close()
})

const upload = (body: string, dryRun = false) =>
  h.app.inject({
    method: 'POST',
    url: `/api/v1/syncs${dryRun ? '?dry_run=true' : ''}`,
    headers: { ...asA, 'content-type': 'text/csv' },
    payload: body,
  })

const FILE = [
  'email,member_id,first_name,consent,consent_at',
  'yes@example.com,m_yes,Yan,yes,2026-11-01T09:00:00Z',
  'no@example.com,m_no,Noa,no,2026-11-01T09:00:00Z',
  'blank@example.com,m_blank,Bo,,',
  'known@example.com,m_known,Kim Renamed,,',
  'odd@example.com,m_odd,Odd,perhaps,',
].join('\n')

async function sync(id: string) {
  for (const start = Date.now(); Date.now() - start < 15_000; await new Promise((r) => setTimeout(r, 100))) {
    const s = await h.app.pipeline.syncs.get('c_alpha', id)
    if (s.status === 'completed') return s
  }
  throw new Error(`sync ${id} did not complete`)
}

describe('a member file with a consent column, only members who agreed', () => {
  beforeEach(async () => {
    // Known in Kit through the plugin before the community chose consent only.
    expect((await h.settled(await h.send({ type: 'user.signed_up', memberId: 'm_known', email: 'known@example.com' }))).status).toBe(
      'succeeded',
    )
    const res = await h.app.inject({ method: 'PUT', url: '/api/v1/consent', headers: asA, payload: { mode: 'marketing_consent' } })
    expect(res.statusCode).toBe(200)
  })

  it('previews who would be left out and why, refusing a consent value it cannot read', async () => {
    const before = h.kit.requests.length
    const res = await upload(FILE, true)
    expect(res.statusCode).toBe(200)
    const plan = res.json()
    expect(plan.left_out_no_consent).toEqual({ count: 2, examples: ['no@example.com', 'blank@example.com'] })
    expect(plan.subscribers.create).toEqual({ count: 1, examples: ['yes@example.com'] })
    expect(plan.subscribers.update).toEqual({ count: 1, examples: ['known@example.com'] })
    expect(plan.refused_rows).toEqual([
      {
        line: 6,
        email: 'odd@example.com',
        member_id: 'm_odd',
        reason: 'consent "perhaps" is not one of true, false, yes, no, 1, 0 (leave it empty when not known)',
      },
    ])
    expect(h.kit.requests.length).toBe(before)
  })

  it('imports only those who agreed and those already in Kit, with no Kit request for the others', async () => {
    const res = await upload(FILE)
    expect(res.statusCode).toBe(202)
    const done = await sync(res.json().id)
    expect(done).toMatchObject({ total: 4, done: 2, skipped: 2, failed: 0, refused: 1 })
    const left = h.app.sqlite
      .prepare(`SELECT member_id, reason, kit_requests FROM deliveries WHERE sync_id = ? AND status = 'skipped' ORDER BY member_id`)
      .all(done.id)
    expect(left).toEqual([
      { member_id: 'm_blank', reason: 'no_consent', kit_requests: 0 },
      { member_id: 'm_no', reason: 'no_consent', kit_requests: 0 },
    ])
    expect(h.subscriber('yes@example.com')).toMatchObject({ first_name: 'Yan', state: 'active' })
    expect(h.subscriber('known@example.com')).toMatchObject({ first_name: 'Kim Renamed' })
    expect(h.subscriber('no@example.com')).toBeUndefined()
    expect(h.subscriber('blank@example.com')).toBeUndefined()
  })
})
