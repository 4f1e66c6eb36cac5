/**
 * Drill: garbage. 10,000 malformed or mis-signed requests — bad, foreign or missing signatures,
 * stale and future timestamps, broken JSON, missing or wrong fields, a webhook-id that is not the
 * body's id, bodies over 256 KiB, wrong content types — shuffled together with 500 valid events and
 * 200 replays of them, 16 at a time. Only the valid events may be stored (once each); no answer may
 * be a 2xx for garbage or a 5xx for anything; /healthz must answer throughout.
 *
 * DRILL_GARBAGE (default 10000) sets the number of bad requests.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { DeliveryReader, waitTerminal } from '../bench/lib/deliveries.ts'
import { envInt, newSecrets, sleep, tempDir } from '../bench/lib/env.ts'
import { lifecycleBacklog, newEventId, signedHeaders, type MemberEvent } from '../bench/lib/events.ts'
import { rssKiB } from '../bench/lib/processes.ts'
import { log, runIfMain, type Outcome } from '../bench/lib/report.ts'
import { startServer } from '../bench/lib/server.ts'
import { finish, RESULTS } from './common.ts'

const COMMUNITY = 'c_garbage'
const VALID_MEMBERS = 125
const REPLAYS = 200
const CONCURRENCY = 16

export interface Shot {
  kind: string
  valid: boolean
  eventId: string | null
  /** A Blob (without a type) sends no content-type at all, where a string would be text/plain. */
  body: string | Blob
  headers: Record<string, string>
}

type Maker = (hmacKey: string, template: MemberEvent) => Omit<Shot, 'kind' | 'valid'>

const clone = (e: MemberEvent): MemberEvent => ({ ...structuredClone(e), id: newEventId('evt_garbage') })
const now = () => Math.floor(Date.now() / 1000)
export const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)] as T

/** A valid event, signed as it should be: the one kind of shot that must be stored. */
export function validShot(hmacKey: string, e: MemberEvent, kind: string): Shot {
  const body = JSON.stringify(e)
  return { kind, valid: true, eventId: e.id, body, headers: signedHeaders(hmacKey, e.id, body) }
}

/** A well-signed body that fails validation in one of many ways. */
function brokenEnvelope(e: MemberEvent): Record<string, unknown> | unknown[] | string | number | null {
  const data = e.data
  const m = data.member as Record<string, unknown>
  const mutations: (() => Record<string, unknown> | unknown[] | string | number | null)[] = [
    () => ({ ...e, specversion: '0.3' }),
    () => ({ ...e, specversion: undefined }),
    () => ({ ...e, source: undefined }),
    () => ({ ...e, type: '' }),
    () => ({ ...e, type: 42 }),
    () => ({ ...e, communityid: undefined }),
    () => ({ ...e, time: 'yesterday at noon' }),
    () => ({ ...e, data: undefined }),
    () => ({ ...e, data: 'member' }),
    () => ({ ...e, data: { ...data, member: undefined } }),
    () => ({ ...e, data: { ...data, member: [m] } }),
    () => ({ ...e, data: { ...data, member: { ...m, id: undefined } } }),
    () => ({ ...e, data: { ...data, member: { ...m, email: undefined } } }),
    () => ({ ...e, data: { ...data, member: { ...m, email: 'not-an-email' } } }),
    () => ({ ...e, data: { ...data, member: { ...m, email: 'x'.repeat(400) + '@example.com' } } }),
    () => ({ ...e, data: { ...data, member: { ...m, first_name: { given: 'Ada' } } } }),
    () => ({ ...e, data: { ...data, member: { ...m, fields: { mk_subscription_plan: 12 } } } }),
    () => ({ ...e, data: { ...data, member: { ...m, fields: ['mk_subscription_plan'] } } }),
    () => ({ ...e, type: 'subscription.started', data: { member: m } }),
    () => ({ ...e, type: 'subscription.canceled', data: { member: m, subscription: { plan: 'pro' } } }),
    () => ({ ...e, type: 'access.granted', data: { member: m } }),
    () => ({ ...e, type: 'access.revoked', data: { member: m, access: { level: '' } } }),
    () => ({ ...e, id: 'x'.repeat(300) }),
    () => [e],
    () => 'an event',
    () => 42,
    () => null,
  ]
  return pick(mutations)()
}

const MAKERS: [string, number, Maker][] = [
  [
    'signature: random bytes',
    1200,
    (_k, t) => {
      const e = clone(t)
      const body = JSON.stringify(e)
      return {
        eventId: e.id,
        body,
        headers: { ...signedHeaders(_k, e.id, body), 'webhook-signature': `v1,${randomBytes(32).toString('base64')}` },
      }
    },
  ],
  [
    'signature: another secret',
    1000,
    (_k, t) => {
      const e = clone(t)
      const body = JSON.stringify(e)
      return { eventId: e.id, body, headers: signedHeaders(randomBytes(32).toString('base64'), e.id, body) }
    },
  ],
  [
    'signature: body changed after signing',
    800,
    (k, t) => {
      const e = clone(t)
      const headers = signedHeaders(k, e.id, JSON.stringify(e))
      ;(e.data.member as Record<string, unknown>).email = 'mallory@example.com'
      return { eventId: e.id, body: JSON.stringify(e), headers }
    },
  ],
  [
    'signature: headers missing or malformed',
    800,
    (k, t) => {
      const e = clone(t)
      const body = JSON.stringify(e)
      const headers = signedHeaders(k, e.id, body)
      const variant = pick(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'v2', 'no-prefix', 'timestamp-text'])
      if (variant === 'v2') headers['webhook-signature'] = headers['webhook-signature']!.replace('v1,', 'v2,')
      else if (variant === 'no-prefix') headers['webhook-signature'] = headers['webhook-signature']!.slice(3)
      else if (variant === 'timestamp-text') headers['webhook-timestamp'] = 'now'
      else delete headers[variant]
      return { eventId: e.id, body, headers }
    },
  ],
  [
    'timestamp: more than 5 min old',
    800,
    (k, t) => {
      const e = clone(t)
      const body = JSON.stringify(e)
      return { eventId: e.id, body, headers: signedHeaders(k, e.id, body, now() - 301 - Math.floor(Math.random() * 86_400)) }
    },
  ],
  [
    'timestamp: more than 5 min ahead',
    400,
    (k, t) => {
      const e = clone(t)
      const body = JSON.stringify(e)
      return { eventId: e.id, body, headers: signedHeaders(k, e.id, body, now() + 301 + Math.floor(Math.random() * 86_400)) }
    },
  ],
  [
    'bad JSON (signed)',
    1200,
    (k, t) => {
      const e = clone(t)
      const json = JSON.stringify(e)
      const body = pick([
        json.slice(0, Math.floor(json.length / 2)),
        `${json}}`,
        json.replace(/"/g, "'"),
        '',
        '{',
        'null,',
        '\u0000\u0001binary',
        '<event/>',
      ])
      return { eventId: e.id, body, headers: signedHeaders(k, e.id, body) }
    },
  ],
  [
    'missing or wrong fields (signed)',
    2000,
    (k, t) => {
      const e = clone(t)
      const body = JSON.stringify(brokenEnvelope(e))
      return { eventId: e.id, body, headers: signedHeaders(k, e.id, body) }
    },
  ],
  [
    'webhook-id differs from the body id (signed)',
    400,
    (k, t) => {
      const e = clone(t)
      const body = JSON.stringify(e)
      const headerId = newEventId('evt_garbage_header')
      return { eventId: e.id, body, headers: signedHeaders(k, headerId, body) }
    },
  ],
  [
    'oversize body > 256 KiB (signed)',
    200,
    (k, t) => {
      const e = clone(t)
      ;(e.data.member as Record<string, unknown>).first_name = 'x'.repeat(256 * 1024 + Math.floor(Math.random() * 4096))
      const body = JSON.stringify(e)
      return { eventId: e.id, body, headers: signedHeaders(k, e.id, body) }
    },
  ],
  [
    'wrong content-type (signed)',
    1200,
    (k, t) => {
      const e = clone(t)
      const body = JSON.stringify(e)
      const type = pick([
        'text/plain',
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/octet-stream',
        '',
      ])
      const headers = signedHeaders(k, e.id, body)
      if (type) headers['content-type'] = type
      else delete headers['content-type']
      return { eventId: e.id, body: type === '' ? new Blob([body]) : body, headers }
    },
  ],
]

/**
 * About `total` bad requests in the kinds' proportions; `include` leaves kinds out (the event bus
 * has no content type, so those kinds are valid events there).
 */
export function garbageShots(
  hmacKey: string,
  total: number,
  template: MemberEvent,
  include: (kind: string) => boolean = () => true,
): Shot[] {
  const makers = MAKERS.filter(([kind]) => include(kind))
  const weightSum = makers.reduce((n, [, w]) => n + w, 0)
  const shots: Shot[] = []
  for (const [kind, weight, make] of makers) {
    const n = Math.round((weight / weightSum) * total)
    for (let i = 0; i < n; i++) shots.push({ kind, valid: false, ...make(hmacKey, template) })
  }
  return shots
}

export function shuffle<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[list[i], list[j]] = [list[j] as T, list[i] as T]
  }
  return list
}

export async function fire(url: string, shot: Shot): Promise<number | string> {
  try {
    const response = await fetch(`${url}/events`, { method: 'POST', body: shot.body, headers: shot.headers })
    await response.arrayBuffer()
    return response.status
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause
    return `no answer (${cause?.code ?? (err as Error).message})`
  }
}

export async function garbageDrill(): Promise<Outcome> {
  const garbageTotal = envInt('DRILL_GARBAGE', 10_000)
  const secrets = newSecrets()
  const server = await startServer({ dir: tempDir('kit-drill-garbage'), secrets, kitUrl: 'http://127.0.0.1:9' })
  try {
    const valid = lifecycleBacklog(COMMUNITY, 'garbage', VALID_MEMBERS).events
    const validIds = new Set(valid.map((e) => e.id))
    const template = valid[0] as MemberEvent
    const shots = garbageShots(secrets.hmacKey, garbageTotal, template)
    const garbageCount = shots.length
    for (const e of valid) shots.push(validShot(secrets.hmacKey, e, 'valid'))
    for (let i = 0; i < REPLAYS; i++) shots.push(validShot(secrets.hmacKey, pick(valid), 'valid replay'))
    shuffle(shots)
    log(`garbage: ${garbageCount} bad requests + ${valid.length} valid events + ${REPLAYS} replays, ${CONCURRENCY} at a time`)

    const answers = new Map<string, Map<number | string, number>>()
    let healthChecks = 0
    let healthFailures = 0
    let slowestHealthMs = 0
    let flooding = true
    const health = (async () => {
      while (flooding) {
        const t = performance.now()
        const ok = await fetch(`${server.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - t)
        healthChecks += 1
        if (!ok) healthFailures += 1
        await sleep(200)
      }
    })()
    const started = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < shots.length) {
          const shot = shots[next++] as Shot
          const answer = await fire(server.url, shot)
          const byAnswer = answers.get(shot.kind) ?? new Map<number | string, number>()
          byAnswer.set(answer, (byAnswer.get(answer) ?? 0) + 1)
          answers.set(shot.kind, byAnswer)
        }
      }),
    )
    const seconds = (performance.now() - started) / 1000
    flooding = false
    await health

    const table: Record<string, Record<string, number>> = {}
    for (const [kind, byAnswer] of answers) table[kind] = Object.fromEntries([...byAnswer].map(([a, n]) => [String(a), n]))
    for (const [kind, row] of Object.entries(table)) log(`garbage:   ${kind.padEnd(45)} ${JSON.stringify(row)}`)
    const count = (predicate: (kind: string, answer: number | string) => boolean) =>
      [...answers].reduce((n, [kind, byAnswer]) => n + [...byAnswer].filter(([a]) => predicate(kind, a)).reduce((m, [, c]) => m + c, 0), 0)
    const isValid = (kind: string) => kind.startsWith('valid')
    const garbage2xx = count((kind, a) => !isValid(kind) && typeof a === 'number' && a < 300)
    const any5xx = count((_k, a) => typeof a === 'number' && a >= 500)
    const noAnswer = count((kind, a) => typeof a === 'string' && !kind.startsWith('oversize'))
    const accepted = count((kind, a) => kind === 'valid' && a === 202) + count((kind, a) => kind === 'valid replay' && a === 202)
    const duplicates = count((kind, a) => isValid(kind) && a === 200)

    const reader = new DeliveryReader(server.databasePath)
    await waitTerminal(reader, validIds.size, { timeoutMs: 60_000 })
    const stored = reader.storedIds()
    const integrity = reader.integrity()
    const deliveries = reader.total()
    reader.close()
    const garbageStored = [...stored].filter((id) => !validIds.has(id)).length
    const validMissing = [...validIds].filter((id) => !stored.has(id)).length
    const healthz = await fetch(`${server.url}/healthz`).then(
      (r) => r.status,
      () => 0,
    )
    const readyz = await fetch(`${server.url}/readyz`).then(
      (r) => r.status,
      () => 0,
    )
    const rss = Math.round(rssKiB(server.pid) / 1024)
    log(
      `garbage: ${shots.length} requests in ${seconds.toFixed(1)} s; stored ${stored.size} events (${garbageStored} of them garbage), ${deliveries} deliveries; ` +
        `/healthz answered ${healthChecks - healthFailures}/${healthChecks} probes during the flood (slowest ${Math.round(slowestHealthMs)} ms), now ${healthz}, /readyz ${readyz}; RSS ${rss} MiB`,
    )
    const ok =
      garbage2xx === 0 &&
      any5xx === 0 &&
      noAnswer === 0 &&
      garbageStored === 0 &&
      validMissing === 0 &&
      stored.size === validIds.size &&
      deliveries === validIds.size &&
      integrity.duplicateEvents === 0 &&
      accepted === validIds.size &&
      duplicates === REPLAYS &&
      healthFailures === 0 &&
      healthz === 200 &&
      readyz === 200
    return finish({
      name: 'garbage',
      figures: {
        bad_requests: garbageCount,
        valid_events: validIds.size,
        replays: REPLAYS,
        seconds: Math.round(seconds * 10) / 10,
        answers: table,
        garbage_answered_2xx: garbage2xx,
        answered_5xx: any5xx,
        not_answered: noAnswer,
        stored_events: stored.size,
        garbage_stored: garbageStored,
        valid_missing: validMissing,
        health_probes: `${healthChecks - healthFailures}/${healthChecks}`,
        slowest_health_ms: Math.round(slowestHealthMs),
        rss_after_mib: rss,
      },
      goal: 'only valid events stored, server healthy',
      status: ok ? 'pass' : 'fail',
      verdict: `${garbageCount} bad requests refused (${garbage2xx} × 2xx, ${any5xx} × 5xx, ${noAnswer} unanswered); ${accepted} valid events accepted + ${duplicates} replays answered duplicate; stored ${stored.size} events = ${validIds.size} valid, ${garbageStored} garbage; /healthz ${healthChecks - healthFailures}/${healthChecks} during the flood and ${healthz} after`,
    })
  } finally {
    await server.kill('SIGTERM')
  }
}

runIfMain(import.meta.url, async () => [await garbageDrill()], RESULTS)
