/**
 * Drill: the platform's event receiver down. Members are created through events so that they exist
 * in Kit and the Kit watch (polling every second) knows them. Then App Station's receiver goes down
 * for DRILL_RECEIVER_DOWN_MS (default 60 000): the first half it refuses connections (nothing
 * listens), the second half it answers 503. Meanwhile the members change in Kit's own app (the
 * stand-in's admin API): some unsubscribe, bounce or complain, some get a new first name, some a
 * new first name and email and then unsubscribe. Then the receiver comes back. Every event must
 * arrive, each id always with the same signed body, a member's events in the order observed,
 * nothing unexpected, and nothing while the receiver was down.
 *
 * DRILL_RECEIVER_MEMBERS (default 40) members; a fifth of them produce two events, the rest one.
 */
import { isDeepStrictEqual } from 'node:util'
import Database from 'better-sqlite3'
import { DeliveryReader, waitTerminal } from '../bench/lib/deliveries.ts'
import { envInt, newSecrets, sleep, tempDir } from '../bench/lib/env.ts'
import { event, member, postAll, type Member } from '../bench/lib/events.ts'
import { cpuSeconds } from '../bench/lib/processes.ts'
import { log, runIfMain, type Outcome } from '../bench/lib/report.ts'
import { startServer } from '../bench/lib/server.ts'
import { api, connect, type Api } from '../bench/lib/session.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'
import { finish, Ledger, RESULTS, until, withServerLog } from './common.ts'
import { startDrillReceiver, type Arrival } from './platform-receiver.ts'

const KEY = 'kit_drill_receiver_key'
const COMMUNITY = 'c_receiver'
const RATE = { limit: 200, windowMs: 1_000 }
/** KIT_POLL_INTERVAL_S at its minimum: a change in Kit becomes an event within about a second. */
const POLL_S = 1
/** How long after the receiver is back every event must have arrived. */
const DRAIN_TIMEOUT_MS = 300_000

const UNSUBSCRIBED = 'kit.subscriber.unsubscribed'
const UPDATED = 'kit.subscriber.updated'

type Changes = Record<string, { from: string | null; to: string | null }>
interface Expected {
  type: string
  changes?: Changes
}

/** What happens to a member in Kit while the receiver is down, and the events that must follow. */
interface Plan {
  member: Member
  first: { action?: 'unsubscribe' | 'bounce' | 'complain'; edit?: { first_name: string; email_address?: string } }
  /** A second change, made once the first was observed (the email in Kit by then). */
  then?: { action: 'unsubscribe'; ref: string }
  expected: Expected[]
}

function planFor(m: Member, i: number): Plan {
  switch (i % 5) {
    case 0:
      return { member: m, first: { action: 'unsubscribe' }, expected: [{ type: UNSUBSCRIBED }] }
    case 1:
      return { member: m, first: { action: 'bounce' }, expected: [{ type: 'kit.subscriber.bounced' }] }
    case 2:
      return { member: m, first: { action: 'complain' }, expected: [{ type: 'kit.subscriber.complained' }] }
    case 3: {
      const name = `Renamed ${i}`
      return {
        member: m,
        first: { edit: { first_name: name } },
        expected: [{ type: UPDATED, changes: { first_name: { from: m.firstName, to: name } } }],
      }
    }
    default: {
      const name = `Moved ${i}`
      const email = `moved.${m.email}`
      return {
        member: m,
        first: { edit: { first_name: name, email_address: email } },
        then: { action: 'unsubscribe', ref: email },
        expected: [
          { type: UPDATED, changes: { first_name: { from: m.firstName, to: name }, email_address: { from: m.email, to: email } } },
          { type: UNSUBSCRIBED },
        ],
      }
    }
  }
}

/** A change made in Kit's own app, through the stand-in's admin API. */
async function inKit(kitUrl: string, ref: string, change: { action?: string; edit?: Record<string, string> }): Promise<void> {
  const path = `/_admin/subscribers/${encodeURIComponent(ref)}${change.action ? `/${change.action}` : ''}`
  const response = await fetch(`${kitUrl}${path}`, {
    method: change.action ? 'POST' : 'PUT',
    headers: { 'X-Kit-Api-Key': KEY, ...(change.edit ? { 'content-type': 'application/json' } : {}) },
    ...(change.edit ? { body: JSON.stringify(change.edit) } : {}),
  })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`the stand-in's ${path} answered ${response.status}: ${text}`)
}

interface OutboxRow {
  seq: number
  id: string
  type: string
  memberId: string | null
  state: string
  attempts: number
  lastError: string | null
}

/** Reads the server's outbox of platform events and its Kit watch (read-only, WAL) while it runs. */
class OutboxReader {
  private readonly db: Database.Database

  constructor(path: string) {
    this.db = new Database(path, { readonly: true, fileMustExist: true })
  }

  events(): OutboxRow[] {
    return this.db
      .prepare(`SELECT seq, id, type, member_id AS memberId, state, attempts, last_error AS lastError FROM platform_events ORDER BY seq`)
      .all() as OutboxRow[]
  }

  /** Members the Kit watch has seen in Kit at least once. */
  seenMembers(communityId: string): number {
    return (this.db.prepare('SELECT count(*) AS n FROM kit_member_states WHERE community_id = ?').get(communityId) as { n: number }).n
  }

  close(): void {
    this.db.close()
  }
}

/** The summary's events still waiting (pending) for the community. */
async function pendingEvents(client: Api): Promise<number> {
  const { status, body } = await client.call('GET', '/platform-events/summary')
  if (status !== 200) throw new Error(`GET /api/v1/platform-events/summary answered ${status}`)
  return (body as { counts: { state: string; count: number }[] }).counts
    .filter((c) => c.state === 'pending')
    .reduce((n, c) => n + c.count, 0)
}

const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()))

/** Whether an arrived event is the expected one: its type and, for an update, exactly its changes. */
function matches(body: Record<string, unknown>, expected: Expected): boolean {
  if (body.type !== expected.type) return false
  if (expected.changes === undefined) return true
  const data = body.data as Record<string, unknown> | undefined
  return isDeepStrictEqual(data?.changes, expected.changes)
}

export async function receiverDrill(): Promise<Outcome> {
  const count = envInt('DRILL_RECEIVER_MEMBERS', 40)
  const downMs = envInt('DRILL_RECEIVER_DOWN_MS', 60_000)
  const plans = Array.from({ length: count }, (_, i) => planFor(member(COMMUNITY, 'receiver', i), i))
  const expectedTotal = plans.reduce((n, p) => n + p.expected.length, 0)
  log(
    `receiver: ${count} members; the platform's receiver down for ${downMs / 1000} s (refusing connections, then 503) while they change in Kit; ${expectedTotal} events expected`,
  )
  // New subscribers stay out of Kit's lists for a while; shortened so the watch knows them in seconds.
  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: RATE, listLagMs: 500 })
  const receiver = await startDrillReceiver()
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir('kit-drill-receiver'),
    secrets,
    kitUrl: kit.url,
    rateLimit: RATE.limit,
    rateWindowMs: RATE.windowMs,
    platformEvents: { url: receiver.url, secret: receiver.secret },
    kitPollIntervalS: POLL_S,
  })
  const client = api(server.url, secrets.jwtSecret, COMMUNITY)
  const ledger = new Ledger()
  const outbox = new OutboxReader(server.databasePath)
  try {
    await connect(client, KEY)
    const signups = plans.map((p, i) => event(p.member, 'user.signed_up', Date.now() - 60_000 + i))
    ledger.record(signups, await postAll(server.url, secrets.hmacKey, signups))
    const deliveries = new DeliveryReader(server.databasePath)
    await withServerLog(server, waitTerminal(deliveries, signups.length, { timeoutMs: 60_000 }))
    const signedUp = deliveries.counts().succeeded
    deliveries.close()
    await withServerLog(
      server,
      until('the Kit watch to see every member', 30_000, () => (outbox.seenMembers(COMMUNITY) >= count ? true : null)),
    )
    const before = outbox.events().length
    log(`receiver: ${signedUp}/${count} members in Kit and seen by the watch; ${before} events to the platform so far`)

    const downAt = Date.now()
    const halfAt = downAt + downMs / 2
    const upAt = downAt + downMs
    const cpuAtDown = cpuSeconds(server.pid)
    await receiver.setMode('refusing')
    log('receiver: down, refusing connections')
    const outage = (async () => {
      await sleepUntil(halfAt)
      await receiver.setMode('unavailable')
      log('receiver: listening again, answering 503')
      await sleepUntil(upAt)
    })()
    // First changes spread over the first 60 % of the outage, the second ones over what follows.
    const changes = (async () => {
      for (const [i, p] of plans.entries()) {
        await sleepUntil(downAt + 1_000 + (i * (0.6 * downMs - 1_000)) / count)
        await inKit(kit.url, p.member.email, p.first)
      }
      const twoStep = plans.filter((p) => p.then)
      const from = Math.max(Date.now(), downAt + 0.6 * downMs) + 2_000
      for (const [i, p] of twoStep.entries()) {
        await sleepUntil(from + (i * (downAt + 0.9 * downMs - from)) / twoStep.length)
        // Only once the first change is an event, so the member's two events are observed in order.
        await until(`the first change of ${p.member.id} to be observed`, 10_000, () =>
          outbox.events().some((e) => e.memberId === p.member.id && e.type === p.expected[0]?.type) ? true : null,
        )
        if (p.then) await inKit(kit.url, p.then.ref, p.then)
      }
    })()
    await withServerLog(server, Promise.all([outage, changes]))
    await sleepUntil(upAt)
    const cpuWhileDown = cpuSeconds(server.pid) - cpuAtDown
    const atUp = outbox.events().slice(before)
    const attemptsWhileDown = atUp.reduce((n, e) => n + e.attempts, 0)
    const errorsWhileDown: Record<string, number> = {}
    for (const e of atUp) if (e.lastError) errorsWhileDown[e.lastError] = (errorsWhileDown[e.lastError] ?? 0) + 1
    await receiver.setMode('up')
    const backAt = Date.now()
    log(
      `receiver: back after ${((backAt - downAt) / 1000).toFixed(1)} s; ${atUp.length} events stored meanwhile, ${attemptsWhileDown} attempts made (last errors ${JSON.stringify(errorsWhileDown)}); server CPU while down ${cpuWhileDown.toFixed(1)} s`,
    )

    // Waits for the receiver to hold every expected id and the outbox to hold nothing more; past
    // the deadline the checks below tell what is missing.
    const receivedIds = () => new Set(receiver.arrivals.filter((a) => a.status === 204).map((a) => a.id))
    const deadline = backAt + DRAIN_TIMEOUT_MS
    let lastProgress = Date.now()
    let lastAsked = 0
    let drained = false
    while (!drained && Date.now() < deadline) {
      await sleep(100)
      const received = receivedIds().size
      if (Date.now() - lastProgress >= 10_000) {
        lastProgress = Date.now()
        const pending = outbox.events().filter((e) => e.state === 'pending').length
        log(`receiver: ${Math.round((Date.now() - backAt) / 1000)} s after it came back: ${received} received, ${pending} pending`)
      }
      // The settings API is rate limited: asked once the receiver has them all, at most every 2 s.
      if (received < expectedTotal || Date.now() - lastAsked < 2_000) continue
      lastAsked = Date.now()
      drained = (await withServerLog(server, pendingEvents(client))) === 0
    }
    const rows = outbox.events()
    const cpuTotal = cpuSeconds(server.pid) - cpuAtDown

    // What reached the receiver, checked.
    const arrivals = receiver.arrivals
    const unverified = arrivals.filter((a) => !a.verified).length
    const bodies = new Map<string, Set<string>>()
    for (const a of arrivals) bodies.set(a.id, (bodies.get(a.id) ?? new Set()).add(a.raw))
    const changedBodies = [...bodies.values()].filter((raws) => raws.size > 1).length
    const idMismatch = arrivals.filter((a) => a.body?.id !== a.id).length
    const whileRefusing = arrivals.filter((a) => a.at >= downAt && a.at < halfAt).length
    const refused503 = arrivals.filter((a) => a.status === 503).length
    const acceptedWhileDown = arrivals.filter((a) => a.status === 204 && a.at >= downAt && a.at < backAt).length
    const accepted = arrivals.filter((a) => a.status === 204)
    const first = new Map<string, Arrival>()
    for (const a of accepted) if (!first.has(a.id)) first.set(a.id, a)
    const duplicates = accepted.length - first.size

    // Every member: exactly its expected events, in order, and in the order of the outbox.
    const seqOf = new Map(rows.map((r) => [r.id, r.seq]))
    const claimed = new Set<string>()
    let missing = 0
    let outOfOrder = 0
    for (const p of plans) {
      const got = [...first.values()].filter((a) => a.body?.subject === `members/${p.member.id}`)
      const found = p.expected.map((e) => got.find((a) => a.body !== null && !claimed.has(a.id) && matches(a.body, e)))
      for (const a of found) if (a) claimed.add(a.id)
      missing += found.filter((a) => !a).length
      const inOrder = found.every((a, i) => !a || i === 0 || !found[i - 1] || (found[i - 1] as Arrival).at <= a.at)
      const seqs = got.map((a) => seqOf.get(a.id) ?? -1)
      if (!inOrder || seqs.some((s, i) => i > 0 && s < (seqs[i - 1] as number))) outOfOrder += 1
    }
    const unexpected = [...first.values()].filter((a) => !claimed.has(a.id))
    const times = [...first.values()].map((a) => a.at)
    const lastAt = times.length ? Math.max(...times) : Number.NaN
    const firstAt = times.length ? Math.min(...times) : Number.NaN
    const toLastMs = lastAt - backAt
    const toFirstMs = firstAt - backAt
    const failed = rows.filter((r) => r.state === 'failed').length
    const maxAttempts = Math.max(0, ...rows.map((r) => r.attempts))
    log(
      `receiver: ${expectedTotal} expected, ${first.size} received (${duplicates} duplicate arrivals by id), ${refused503} refused with 503 while down, ` +
        `${acceptedWhileDown} accepted while down, ${whileRefusing} reached it while it refused connections; first delivery ${(toFirstMs / 1000).toFixed(1)} s, ` +
        `last ${(toLastMs / 1000).toFixed(1)} s after it came back; most attempts for one event ${maxAttempts}`,
    )
    if (unexpected.length)
      log(`receiver: unexpected: ${unexpected.map((a) => `${String(a.body?.type)} ${String(a.body?.subject)}`).join(', ')}`)

    const whileDown = acceptedWhileDown + whileRefusing
    const ok =
      drained &&
      missing === 0 &&
      unexpected.length === 0 &&
      outOfOrder === 0 &&
      changedBodies === 0 &&
      idMismatch === 0 &&
      unverified === 0 &&
      whileDown === 0 &&
      failed === 0 &&
      ledger.accepted().length === count
    return finish({
      name: 'receiver',
      figures: {
        down_seconds: downMs / 1000,
        members: count,
        expected: expectedTotal,
        received: first.size,
        duplicates_by_id: duplicates,
        lost: missing,
        unexpected: unexpected.length,
        members_out_of_order: outOfOrder,
        bodies_changed_on_retry: changedBodies,
        unverified,
        stored_while_down: atUp.length,
        attempts_while_down: attemptsWhileDown,
        last_errors_while_down: errorsWhileDown,
        refused_503: refused503,
        accepted_while_down: acceptedWhileDown,
        most_attempts_for_one_event: maxAttempts,
        seconds_to_first_delivery_after_back: Math.round(toFirstMs / 100) / 10,
        seconds_to_last_delivery_after_back: Math.round(toLastMs / 100) / 10,
        server_cpu_seconds_while_down: Math.round(cpuWhileDown * 10) / 10,
        server_cpu_seconds_until_drained: Math.round(cpuTotal * 10) / 10,
      },
      goal: 'nothing lost, nothing while down, every event once back, same body per id, in order per member',
      status: ok ? 'pass' : 'fail',
      verdict: `${downMs / 1000} s receiver outage: ${expectedTotal} events expected, ${first.size} received (${duplicates} duplicates), ${whileDown === 0 ? 'none' : whileDown} while down, last ${(toLastMs / 1000).toFixed(1)} s after it came back; lost ${missing}, unexpected ${unexpected.length}, out of order ${outOfOrder}, bodies changed ${changedBodies}${drained ? '' : `; events still pending ${DRAIN_TIMEOUT_MS / 1000} s after it came back`}`,
    })
  } finally {
    outbox.close()
    await server.kill('SIGTERM')
    await receiver.close()
    await kit.close()
  }
}

runIfMain(import.meta.url, async () => [await receiverDrill()], RESULTS)
