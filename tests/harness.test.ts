/** The shared test harness itself: sessions that never carry an expired token, and the factories. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildTestApp, type TestApp } from './helpers/app.ts'
import { auth, sessionFor, tokenFor } from './helpers/tokens.ts'

let built: TestApp | undefined

afterEach(async () => {
  vi.useRealTimers()
  await built?.app.close()
  built = undefined
})

const getConnection = (headers: Record<string, string>) => built!.app.inject({ method: 'GET', url: '/api/v1/connection', headers })

describe('sessions in tests', () => {
  it('sign a fresh token for each request, so a session declared once still works after a token\'s two minutes', async () => {
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
