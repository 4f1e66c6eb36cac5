/**
 * Kit webhooks (contract §7, with PUBLIC_URL): the real app listening on loopback, registered with
 * the Kit stand-in on connect and removed on disconnect. An unsubscribe, bounce or complaint made
 * in Kit reaches the platform's receiver signed within 5 s (the poll is far off); a forged delivery
 * for someone still active, an unknown token, or another community's token changes nothing.
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { WATCHED_WEBHOOKS } from '../server/pipeline/kit-watch.ts'
import { waitFor } from './helpers/events.ts'
import { receiverForTests } from './helpers/platform-receiver.ts'
import { asA, asB, KEY, KEY_B, PipelineHarness } from './helpers/pipeline.ts'

let h: PipelineHarness | undefined
let publicUrl = ''
const receiver = receiverForTests(async () => {
  await h?.close()
  h = undefined
})

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** The app on a real loopback port that is its PUBLIC_URL; the poll is five minutes away. */
async function harness(): Promise<PipelineHarness> {
  const port = await freePort()
  publicUrl = `http://127.0.0.1:${port}`
  h = await PipelineHarness.start({
    kit: { listLagMs: 200 },
    config: { publicUrl, kitPollIntervalS: 300, platformEvents: { url: receiver.url, secret: receiver.secret } },
  })
  await h.app.listen({ port, host: '127.0.0.1' })
  await h.connect()
  return h
}

async function member(app: PipelineHarness, memberId: string, email: string, headers = asA): Promise<void> {
  const communityId = headers === asB ? 'c_bravo' : 'c_alpha'
  const id = await app.send({ type: 'user.signed_up', communityId, memberId, email, firstName: 'Ada' })
  expect((await app.settled(id)).status).toBe('succeeded')
}

const tokenOf = (url: string) => url.slice(url.lastIndexOf('/') + 1)
const eventRows = (app: PipelineHarness) => (app.app.sqlite.prepare('SELECT count(*) AS n FROM platform_events').get() as { n: number }).n
const postWebhook = (token: string, body: unknown) =>
  fetch(`${publicUrl}/kit/webhooks/${token}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

describe('Kit webhooks', () => {
  it('registers one webhook per watched event on connect, each at its own unguessable path under PUBLIC_URL', async () => {
    const app = await harness()
    const hooks = app.kit.account(KEY).webhooks
    expect(hooks.map((w) => w.event).sort()).toEqual([...WATCHED_WEBHOOKS].sort())
    const tokens = hooks.map((w) => tokenOf(w.target_url))
    expect(new Set(tokens).size).toBe(3)
    for (const hook of hooks) expect(hook.target_url).toMatch(new RegExp(`^${publicUrl}/kit/webhooks/[A-Za-z0-9_-]{32}$`))
    const stored = app.app.sqlite.prepare('SELECT token, kit_webhook_id AS id FROM kit_webhooks ORDER BY token').all() as {
      token: string
      id: number
    }[]
    expect(stored.map((s) => s.token)).toEqual([...tokens].sort())
    expect(stored.map((s) => s.id).sort()).toEqual(hooks.map((w) => w.id).sort())
  })

  it('tells the platform within 5 s of an unsubscribe, a bounce and a complaint made in Kit, signed and once each', async () => {
    const app = await harness()
    await member(app, 'm_u', 'u@example.com')
    await member(app, 'm_b', 'b@example.com')
    await member(app, 'm_c', 'c@example.com')
    const at = Date.now()
    for (const [email, action] of [
      ['u@example.com', 'unsubscribe'],
      ['b@example.com', 'bounce'],
      ['c@example.com', 'complain'],
    ]) {
      const res = await fetch(`${app.kit.url}/_admin/subscribers/${encodeURIComponent(email!)}/${action}`, {
        method: 'POST',
        headers: { 'X-Kit-Api-Key': KEY },
      })
      expect(res.status).toBe(200)
    }
    const types = ['kit.subscriber.unsubscribed', 'kit.subscriber.bounced', 'kit.subscriber.complained']
    await waitFor(() => types.every((t) => receiver.accepted().some((r) => r.body.type === t)), {
      what: 'the three events',
      timeoutMs: 5000,
    })
    expect(Date.now() - at).toBeLessThan(5000)
    const accepted = receiver.accepted()
    expect(accepted.every((r) => r.verified)).toBe(true)
    expect(accepted.map((r) => [r.body.type, r.body.subject]).sort()).toEqual([
      ['kit.subscriber.bounced', 'members/m_b'],
      ['kit.subscriber.complained', 'members/m_c'],
      ['kit.subscriber.unsubscribed', 'members/m_u'],
    ])
    // Each delivery was re-read from Kit before it was believed.
    expect(app.kit.requests.filter((r) => r.method === 'GET' && /^\/v4\/subscribers\/\d+$/.test(r.path))).toHaveLength(3)
  })

  it('believes Kit, not the delivery: a forged unsubscribe for someone still active emits nothing', async () => {
    const app = await harness()
    await member(app, 'm_ada', 'ada@example.com')
    const ada = app.subscriber('ada@example.com')!
    const token = tokenOf(app.kit.account(KEY).webhooks[0]!.target_url)
    const before = eventRows(app)
    const res = await postWebhook(token, { subscriber: { id: ada.id, email_address: 'ada@example.com', state: 'cancelled' } })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: 'received' })
    await app.app.kitWatch.settled()
    expect(app.kit.requests.some((r) => r.path === `/v4/subscribers/${ada.id}`)).toBe(true)
    expect(eventRows(app)).toBe(before)
    expect(app.subscriber('ada@example.com')).toMatchObject({ state: 'active' })
  })

  it('answers 404 to a token it never gave out, and to a body too large with 413', async () => {
    const app = await harness()
    const unknown = await postWebhook('not-a-token-we-gave-out', { subscriber: { id: 1 } })
    expect(unknown.status).toBe(404)
    expect((await unknown.json()).error.code).toBe('not_found')
    const token = tokenOf(app.kit.account(KEY).webhooks[0]!.target_url)
    const big = await postWebhook(token, { subscriber: { id: 1, padding: 'x'.repeat(20_000) } })
    expect(big.status).toBe(413)
  })

  it('another community’s token cannot affect this one: the re-read uses that community’s own key', async () => {
    const app = await harness()
    await app.connect(asB, KEY_B)
    await member(app, 'm_ada', 'ada@example.com')
    const ada = app.subscriber('ada@example.com')!
    // Quietly (no webhook fires) Kit now holds Ada as unsubscribed in community A's account.
    app.kit.account(KEY).subscribers.find((s) => s.id === ada.id)!.state = 'cancelled'
    const before = eventRows(app)
    const from = app.kit.requests.length
    const bToken = tokenOf(app.kit.account(KEY_B).webhooks[0]!.target_url)
    expect((await postWebhook(bToken, { subscriber: { id: ada.id } })).status).toBe(200)
    await app.app.kitWatch.settled()
    const reread = app.kit.requests.slice(from)
    expect(reread.map((r) => [r.method, r.path, r.key, r.status])).toEqual([['GET', `/v4/subscribers/${ada.id}`, KEY_B, 404]])
    expect(eventRows(app)).toBe(before)
  })

  it('removes its webhooks from Kit on disconnect, and their tokens stop answering', async () => {
    const app = await harness()
    const token = tokenOf(app.kit.account(KEY).webhooks[0]!.target_url)
    const res = await app.app.inject({ method: 'DELETE', url: '/api/v1/connection', headers: asA })
    expect(res.statusCode).toBeLessThan(300)
    expect(app.kit.account(KEY).webhooks).toEqual([])
    expect(app.app.sqlite.prepare('SELECT count(*) AS n FROM kit_webhooks').get()).toEqual({ n: 0 })
    expect((await postWebhook(token, { subscriber: { id: 1 } })).status).toBe(404)
  })
})
