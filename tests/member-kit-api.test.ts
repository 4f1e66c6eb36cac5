/** The member story's line about Kit: `member_kit` of GET /deliveries when `member` names one member's whole email. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { DeliveryPage } from '#shared/api.ts'
import type { KitMemberState } from '../server/core/storage.ts'
import { asA, asB, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness

beforeEach(async () => {
  h = await PipelineHarness.start({ connected: true })
})
afterEach(async () => {
  await h.close()
})

const LEARNT = '2026-12-07T16:19:28.000Z'

async function story(member: string, headers: Record<string, string> = asA): Promise<DeliveryPage> {
  const res = await h.app.inject({ method: 'GET', url: `/api/v1/deliveries?order=oldest&member=${encodeURIComponent(member)}`, headers })
  expect(res.statusCode).toBe(200)
  return res.json()
}

/** Sends a sign-up for the member of community `communityId` and waits until Kit has them. */
async function signUp(memberId: string, email: string, communityId = 'c_alpha'): Promise<void> {
  await h.settled(await h.send({ type: 'user.signed_up', communityId, memberId, email }))
}

async function credentialOf(communityId: string): Promise<string> {
  const connection = await h.app.storage.connections.get(communityId)
  if (!connection) throw new Error(`${communityId} is not connected`)
  return connection.credentialId
}

async function learn(communityId: string, memberId: string, seen: Partial<KitMemberState>): Promise<void> {
  const state = {
    subscriberId: 900,
    state: 'cancelled',
    stateLearnedAt: Date.parse(LEARNT),
    firstName: null,
    email: 'x@example.com',
    ...seen,
  }
  await h.app.storage.kitStates.record(communityId, await credentialOf(communityId), memberId, state, Date.now())
}

describe('what Kit holds of the member a search names', () => {
  it('answers the state last seen, since when, and the subscriber, whatever the case of the email typed', async () => {
    await signUp('m_ada', 'ada@example.com')
    await learn('c_alpha', 'm_ada', { subscriberId: 4242, state: 'cancelled' })

    const page = await story('ADA@example.com')
    expect(page.items.map((d) => d.member_email)).toEqual(['ada@example.com'])
    expect(page.member_kit).toEqual({ state: 'cancelled', learned_at: LEARNT, subscriber_id: 4242 })
  })

  it('answers no state, with the subscriber the plugin wrote, while nothing was seen of them in Kit', async () => {
    await signUp('m_bo', 'bo@example.com')
    await h.app.storage.kitStates.forgetMember('c_alpha', 'm_bo')
    await h.app.storage.subscribers.save({
      communityId: 'c_alpha',
      credentialId: await credentialOf('c_alpha'),
      memberId: 'm_bo',
      email: 'bo@example.com',
      subscriberId: 777,
      firstName: null,
      fields: '{}',
      updatedAt: Date.now(),
    })

    expect((await story('bo@example.com')).member_kit).toEqual({ state: null, learned_at: null, subscriber_id: 777 })
  })

  it('says nothing when the search is part of an email, or finds no delivery', async () => {
    await signUp('m_cy', 'cy@example.com')
    await learn('c_alpha', 'm_cy', { state: 'bounced' })

    const partial = await story('cy@example')
    expect(partial.items).toHaveLength(1)
    expect(partial).not.toHaveProperty('member_kit')
    const nobody = await story('nobody@example.com')
    expect(nobody.items).toEqual([])
    expect(nobody).not.toHaveProperty('member_kit')
    const everyone = (await h.app.inject({ method: 'GET', url: '/api/v1/deliveries', headers: asA })).json()
    expect(everyone).not.toHaveProperty('member_kit')
  })

  it('needs a session token', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/deliveries?member=ada@example.com' })
    expect(res.statusCode).toBe(401)
    expect(res.json()).not.toHaveProperty('member_kit')
  })

  it('another community never finds the member, and reads only its own memory of the same member id in the same Kit account', async () => {
    await signUp('m_ada', 'ada@example.com')
    await learn('c_alpha', 'm_ada', { subscriberId: 4242, state: 'complained' })

    const stranger = await story('ada@example.com', asB)
    expect(stranger.items).toEqual([])
    expect(stranger).not.toHaveProperty('member_kit')

    // The same Kit key (one credential) and the same member id, in community B.
    await h.connect(asB)
    expect(await credentialOf('c_bravo')).toBe(await credentialOf('c_alpha'))
    await signUp('m_ada', 'ada@example.com', 'c_bravo')
    await learn('c_bravo', 'm_ada', { subscriberId: 4242, state: 'active', stateLearnedAt: Date.parse('2026-12-01T00:00:00.000Z') })

    expect((await story('ada@example.com', asB)).member_kit?.state).toBe('active')
    expect((await story('ada@example.com', asA)).member_kit).toEqual({ state: 'complained', learned_at: LEARNT, subscriber_id: 4242 })
  })
})
