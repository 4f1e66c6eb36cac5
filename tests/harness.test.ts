/** The shared test harness itself: sessions that never carry an expired token, and the factories. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildTestApp, type TestApp } from './helpers/app.ts'
import { auth, sessionFor, tokenFor } from './helpers/tokens.ts'
import { newDelivery, queuedDelivery, storeDelivery } from './helpers/deliveries.ts'
import { makeEvent } from './helpers/events.ts'

let built: TestApp | undefined

afterEach(async () => {
  vi.useRealTimers()
  await built?.app.close()
  built = undefined
})

const getConnection = (headers: Record<string, string>) => built!.app.inject({ method: 'GET', url: '/api/v1/connection', headers })

describe('sessions in tests', () => {
  it("sign a fresh token for each request, so a session declared once still works after a token's two minutes", async () => {
    built = await buildTestApp()
    const session = sessionFor('c_alpha')
    const minted = auth(tokenFor('c_alpha'))
    expect((await getConnection(session)).statusCode).toBe(200)
    expect((await getConnection(minted)).statusCode).toBe(200)

    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 150_000)
    expect((await getConnection(minted)).statusCode).toBe(401)
    expect((await getConnection(session)).statusCode).toBe(200)
    expect((await getConnection({ ...session })).statusCode).toBe(200)
  })
})

describe('factories', () => {
  it('give unique ids and members on each call, and take every override', () => {
    const [a, b] = [makeEvent(), makeEvent()]
    expect(a.id).not.toBe(b.id)
    expect(a.subject).not.toBe(b.subject)
    const [x, y] = [newDelivery(), newDelivery()]
    expect([x.eventId, x.memberId]).not.toEqual([y.eventId, y.memberId])
    expect(JSON.parse(x.payload)).toMatchObject({
      id: x.eventId,
      type: 'user.signed_up',
      communityid: 'c_alpha',
      data: { member: { id: x.memberId, email: x.memberEmail } },
    })
    expect(newDelivery({ communityId: 'c_bravo', memberId: 'm_1', eventType: 'access.granted' })).toMatchObject({
      communityId: 'c_bravo',
      memberId: 'm_1',
      eventType: 'access.granted',
      memberEmail: 'm_1@example.com',
    })
    const q = queuedDelivery({ seq: 7, attempts: 2 })
    expect(q).toMatchObject({ seq: 7, attempts: 2, kitRequests: 0 })
    expect(queuedDelivery().id).not.toBe(queuedDelivery().id)
  })

  it('store a delivery in the state asked, seen through the API by its own community only', async () => {
    built = await buildTestApp({}, { autoStart: false })
    const { eventId } = storeDelivery(built.app.sqlite, { status: 'failed', lastError: 'Kit refused it', memberEmail: 'ada@example.com' })
    const mine = (await getAs('/api/v1/deliveries', sessionFor('c_alpha'))).json().items
    expect(mine).toMatchObject([{ event_id: eventId, status: 'failed', last_error: 'Kit refused it', member_email: 'ada@example.com' }])
    expect((await getAs('/api/v1/deliveries', sessionFor('c_bravo'))).json().items).toEqual([])
  })
})

const getAs = (url: string, headers: Record<string, string>) => built!.app.inject({ method: 'GET', url, headers })
