/** The routes the panel polls while watched log their request lines at debug, not info. */
import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from './helpers/app.ts'
import { auth, tokenFor } from './helpers/tokens.ts'

let app: FastifyInstance | undefined
afterEach(async () => {
  await app?.close()
  app = undefined
})

interface Line {
  level: number
  msg: string
  req?: { url: string }
  res?: { statusCode: number }
  reqId: string
}

/** The request lines ("incoming request", "request completed") of each request, by URL. */
function requestLines(logs: string[]): { url: string; level: number; msg: string; status?: number }[] {
  const lines = logs
    .flatMap((chunk) => chunk.split('\n'))
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line)
  const urls = new Map(lines.filter((l) => l.req).map((l) => [l.reqId, l.req!.url]))
  return lines
    .filter((l) => l.msg === 'incoming request' || l.msg === 'request completed')
    .map((l) => ({ url: urls.get(l.reqId) ?? '?', level: l.level, msg: l.msg, ...(l.res ? { status: l.res.statusCode } : {}) }))
}

const DEBUG = 20
const INFO = 30

describe('request logging', () => {
  it('keeps Activity’s polling out of the info log and logs every other request there', async () => {
    const built = await buildTestApp({ logLevel: 'info' })
    app = built.app
    const headers = auth(tokenFor('c_alpha'))
    expect((await app.inject({ method: 'GET', url: '/api/v1/deliveries', headers })).statusCode).toBe(200)
    expect((await app.inject({ method: 'GET', url: '/api/v1/syncs/sync_missing', headers })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/api/v1/mappings', headers })).statusCode).toBe(200)

    const lines = requestLines(built.logs)
    expect(lines.filter((l) => l.url.startsWith('/api/v1/deliveries') || l.url.startsWith('/api/v1/syncs'))).toEqual([])
    expect(lines.filter((l) => l.url === '/api/v1/mappings')).toEqual([
      { url: '/api/v1/mappings', level: INFO, msg: 'incoming request' },
      { url: '/api/v1/mappings', level: INFO, msg: 'request completed', status: 200 },
    ])
  })

  it('logs the polling requests at debug when the level asks for them', async () => {
    const built = await buildTestApp({ logLevel: 'debug' })
    app = built.app
    await app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=5', headers: auth(tokenFor('c_alpha')) })
    expect(requestLines(built.logs).filter((l) => l.url.startsWith('/api/v1/deliveries'))).toEqual([
      { url: '/api/v1/deliveries?limit=5', level: DEBUG, msg: 'incoming request' },
      { url: '/api/v1/deliveries?limit=5', level: DEBUG, msg: 'request completed', status: 200 },
    ])
  })

  it('still logs a polled request the server failed at its usual level', async () => {
    const built = await buildTestApp({ logLevel: 'info' })
    app = built.app
    app.pipeline.deliveries.list = async () => {
      throw new Error('the database went away')
    }
    const answer = await app.inject({ method: 'GET', url: '/api/v1/deliveries', headers: auth(tokenFor('c_alpha')) })
    expect(answer.statusCode).toBe(500)
    // Its "incoming request" line stayed at debug: only the answer tells it apart.
    expect(requestLines(built.logs).filter((l) => l.status === 500)).toEqual([
      { url: expect.any(String), level: INFO, msg: 'request completed', status: 500 },
    ])
  })
})
