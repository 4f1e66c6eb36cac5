/**
 * Benchmark 2 — Kit economy: Kit requests per event on the lifecycle mix (signed up with
 * mk_subscription_plan, subscription started, access granted, subscription canceled) for 200
 * members, counted at the Kit stand-in, the one-off GET /v4/account of connecting left out.
 * Beside it, the straightforward client of naive-client.ts on the same events against a fresh
 * stand-in. Both end states are checked against what the events should leave in Kit.
 * Goal: ≤ 2.0 requests per event.
 */
import { DeliveryReader, waitTerminal } from './lib/deliveries.ts'
import { envInt, newSecrets, round, tempDir } from './lib/env.ts'
import { LIFECYCLE_FIELDS, LIFECYCLE_TAGS, lifecycleBacklog, postAll, type MemberEvent } from './lib/events.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { startServer } from './lib/server.ts'
import { api, connect } from './lib/session.ts'
import { breakdown, pipelineRequests } from './lib/standin.ts'
import { checkKit, describeCheck, type Expected } from './lib/verify.ts'
import { RESULTS } from './intake.ts'
import { NaiveKitClient } from './naive-client.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const KEY = 'kit_bench_economy_key'
const COMMUNITY = 'c_economy'
const GENEROUS = { limit: 100_000, windowMs: 60_000 }

export async function economyBenchmark(): Promise<Outcome[]> {
  const members = envInt('BENCH_ECONOMY_MEMBERS', 200)
  const backlog = lifecycleBacklog(COMMUNITY, 'economy', members)
  const expected = backlog.members.map((m) => ({ email: m.email, tags: LIFECYCLE_TAGS, fields: LIFECYCLE_FIELDS }))
  const eventCount = backlog.events.length
  log(`economy: ${members} members × 4 lifecycle events = ${eventCount} events, Kit stand-in with a generous limit`)

  const main = await serverRun(backlog.events, expected, { sequence: false })
  const serverRequests = main.requests
  const serverCheck = main.check
  const storedKitRequests = main.stored
  // With a sequence mapped, a member who needed no write has Kit's state read first (one GET), so
  // nobody unsubscribed is ever added: the cost of that check, measured on the same events.
  const withSequence = process.env.BENCH_ECONOMY_SEQUENCE === '0' ? null : await serverRun(backlog.events, expected, { sequence: true })

  const naiveKit = await startKitStandin({ apiKeys: [KEY], rateLimit: GENEROUS })
  const naive = new NaiveKitClient(naiveKit.url, KEY)
  let naiveCheck
  let naiveBreakdown
  try {
    for (const e of backlog.events) await naive.handle(e)
    naiveCheck = checkKit(naiveKit.account(KEY), expected)
    naiveBreakdown = breakdown(naiveKit.requests)
  } finally {
    await naiveKit.close()
  }

  const perEvent = serverRequests.length / eventCount
  const naivePerEvent = naive.requests / eventCount
  log(
    `economy: server  ${serverRequests.length} Kit requests → ${perEvent.toFixed(2)} per event (the deliveries' own kit_requests add up to ${storedKitRequests})`,
  )
  log(`economy:   ${JSON.stringify(breakdown(serverRequests))}`)
  log(`economy:   end state: ${describeCheck(serverCheck)}`)
  const stateReads = withSequence?.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/v4/subscribers/')).length ?? 0
  if (withSequence) {
    log(
      `economy: with a sequence on subscription.started  ${withSequence.requests.length} Kit requests → ${(withSequence.requests.length / eventCount).toFixed(2)} per event, ${stateReads} of them reading a subscriber's state before the sequence`,
    )
    log(`economy:   ${JSON.stringify(breakdown(withSequence.requests))}`)
    log(`economy:   end state: ${describeCheck(withSequence.check)}`)
  }
  log(`economy: naive   ${naive.requests} Kit requests → ${naivePerEvent.toFixed(2)} per event`)
  log(`economy:   ${JSON.stringify(naiveBreakdown)}`)
  log(`economy:   end state: ${describeCheck(naiveCheck)}`)
  const outcome: Outcome = {
    name: 'economy',
    figures: {
      members,
      events: eventCount,
      server_kit_requests: serverRequests.length,
      server_requests_per_event: round(perEvent),
      naive_kit_requests: naive.requests,
      naive_requests_per_event: round(naivePerEvent),
      saving_vs_naive: round(1 - perEvent / naivePerEvent),
      server_end_state_ok: serverCheck.ok,
      ...(withSequence
        ? {
            with_sequence_requests_per_event: round(withSequence.requests.length / eventCount),
            with_sequence_state_reads: stateReads,
          }
        : {}),
      naive_end_state_ok: naiveCheck.ok,
    },
    goal: '≤ 2.0 Kit requests per event',
    status: verdictOf(perEvent <= 2 && serverCheck.ok),
    verdict: `${perEvent.toFixed(2)} requests per event (straightforward client: ${naivePerEvent.toFixed(2)}, ${Math.round((1 - perEvent / naivePerEvent) * 100)}% fewer)${serverCheck.ok ? '' : ` — end state wrong: ${describeCheck(serverCheck)}`}`,
  }
  printOutcome(outcome)
  return [outcome]
}

/** One server run over the events against a fresh stand-in: the Kit requests the pipeline made, and the end state. */
async function serverRun(events: MemberEvent[], expected: Expected[], { sequence }: { sequence: boolean }) {
  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: GENEROUS })
  if (sequence) kit.seed(KEY, { sequences: [{ name: 'Members' }] })
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir('kit-bench-economy'),
    secrets,
    kitUrl: kit.url,
    rateLimit: GENEROUS.limit,
    rateWindowMs: GENEROUS.windowMs,
  })
  try {
    const client = api(server.url, secrets.jwtSecret, COMMUNITY)
    await connect(client, KEY)
    if (sequence) {
      const seq = kit.account(KEY).sequences[0]!
      const doc = (await client.call('GET', '/mappings')).body as { events: Record<string, Record<string, unknown>> }
      const patch = {
        events: { 'subscription.started': { ...doc.events['subscription.started'], add_to_sequences: [{ id: seq.id, name: seq.name }] } },
      }
      const answer = await client.call('PATCH', '/mappings', patch)
      if (answer.status !== 200) throw new Error(`PATCH /mappings answered ${answer.status}`)
    }
    const from = kit.requests.length
    const statuses = await postAll(server.url, secrets.hmacKey, events)
    const refused = statuses.filter((s) => s !== 202).length
    if (refused > 0) throw new Error(`${refused} events were not accepted`)
    const reader = new DeliveryReader(server.databasePath)
    const counts = await waitTerminal(reader, events.length, {
      timeoutMs: 120_000,
      onProgress: (c) => log(`economy: ${JSON.stringify(c)}`),
    })
    const stored = reader.kitRequests()
    reader.close()
    if (counts.succeeded !== events.length) log(`economy: not every delivery succeeded: ${JSON.stringify(counts)}`)
    return { requests: pipelineRequests(kit.requests, from), check: checkKit(kit.account(KEY), expected), stored }
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
}

runIfMain(import.meta.url, economyBenchmark, RESULTS)
