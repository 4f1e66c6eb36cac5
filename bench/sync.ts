/**
 * Benchmark — initial sync, both ways to connect side by side: members a file brings over, the
 * Kit requests they cost and the time they take, against the floor Kit's budget sets. The mapping
 * is the issue's: one tag on `member.snapshot` and two member fields. The clock runs from the
 * upload until the sync is completed; the end state in the stand-in is checked member by member.
 *
 * - API key: one request or more a member (the subscriber with its fields, then the tag), at a
 *   scaled budget (KEY_LIMIT requests per KEY_WINDOW_MS, ten times Kit's 120 a minute) so the run
 *   is short. Floor: members a minute the budget allows at the requests a member actually cost.
 *   Goal: within 10 % of it (ratio ≥ 0.90). What that means at 120 a minute is printed.
 * - Connect with Kit (OAuth): Kit's bulk endpoints, up to 100 members a request, at Kit's real
 *   OAuth budget (600 requests per rolling 60 s, in the stand-in and in the server). Goal:
 *   ≤ 0.05 Kit requests a member and ≤ 60 s for 10,000 members. Floor: the budget lets the first
 *   600 requests go at once, so below that the floor is 0 s (the time is the server's own work);
 *   above it, (requests − 600) ÷ 10 a second.
 *
 * BENCH_SYNC_MEMBERS (default 10,000) sets the OAuth file's size; BENCH_SYNC_KEY_MEMBERS
 * (default 1,000) the API key's.
 */
import { performance } from 'node:perf_hooks'
import { envInt, freePort, newSecrets, round, sleep, tempDir } from './lib/env.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { startServer } from './lib/server.ts'
import { api, connect, connectWithKit, sessionToken, type Api } from './lib/session.ts'
import { breakdown, pipelineRequests } from './lib/standin.ts'
import { checkKit, describeCheck } from './lib/verify.ts'
import { RESULTS } from './intake.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const KEY = 'kit_bench_sync_key'
const COMMUNITY = 'c_sync'
const KEY_LIMIT = 40
const KEY_WINDOW_MS = 2_000
/** Kit's real budgets. */
const API_KEY_PER_MINUTE = 120
const OAUTH_LIMIT = 600
const OAUTH_WINDOW_MS = 60_000
const CLIENT = { clientId: 'kit_bench_app', clientSecret: 'kit_bench_app_secret_0123456789' }

interface SyncAnswer {
  id: string
  status: string
  total: number
  done: number
  failed: number
  skipped: number
  remaining: number
  kit_requests: number
  estimated_seconds_left: number | null
}

interface Run {
  label: 'api key' | 'oauth'
  members: number
  limit: number
  windowMs: number
}

interface Measured {
  seconds: number
  uploadSeconds: number
  requests: number
  perMember: number
  throttled: number
  ok: boolean
  done: number
  kinds: Record<string, number>
}

const fileOf = (members: number) => {
  const lines = ['email,member_id,first_name,mk_plan,mk_company']
  for (let i = 0; i < members; i++) lines.push(`member${i}@example.com,m_${i},Member ${i},plan-${i % 4},Company ${i % 50}`)
  return `${lines.join('\n')}\n`
}

async function mapOneTagTwoFields(client: Api): Promise<void> {
  const mappings = (await client.call('GET', '/mappings')).body as { events: Record<string, unknown>; fields: unknown[] }
  mappings.events['member.snapshot'] = {
    add_tags: [{ name: 'Imported' }],
    remove_tags: [],
    add_to_forms: [],
    add_to_sequences: [],
    unsubscribe: false,
  }
  mappings.fields = [
    { source: 'mk_plan', kit_field: { key: 'plan', label: 'Plan' } },
    { source: 'mk_company', kit_field: { key: 'company', label: 'Company' } },
  ]
  const saved = await client.call('PUT', '/mappings', mappings)
  if (saved.status !== 200) throw new Error(`PUT /mappings answered ${saved.status}: ${JSON.stringify(saved.body)}`)
}

async function runSync(run: Run): Promise<Measured> {
  const oauth = run.label === 'oauth'
  const port = await freePort()
  const serverUrl = `http://127.0.0.1:${port}`
  const kit = await startKitStandin({
    apiKeys: [KEY],
    rateLimit: { limit: run.limit, windowMs: run.windowMs },
    ...(oauth
      ? {
          oauth: {
            ...CLIENT,
            redirectUris: [`${serverUrl}/oauth/kit/callback`],
            account: KEY,
            rateLimit: { limit: run.limit, windowMs: run.windowMs },
          },
        }
      : {}),
  })
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir('kit-bench-sync'),
    secrets,
    kitUrl: kit.url,
    port,
    rateLimit: oauth ? 120 : run.limit,
    rateWindowMs: oauth ? 60_000 : run.windowMs,
    ...(oauth
      ? {
          env: {
            PUBLIC_URL: serverUrl,
            KIT_OAUTH_CLIENT_ID: CLIENT.clientId,
            KIT_OAUTH_CLIENT_SECRET: CLIENT.clientSecret,
            KIT_OAUTH_RATE_LIMIT: String(run.limit),
            KIT_OAUTH_RATE_WINDOW_MS: String(run.windowMs),
          },
        }
      : {}),
  })
  try {
    const client = api(server.url, secrets.jwtSecret, COMMUNITY)
    if (oauth) await connectWithKit(client, server.url)
    else await connect(client, KEY)
    await mapOneTagTwoFields(client)
    // The connection's own requests are out of the budget's window before the clock starts.
    if (!oauth) await sleep(run.windowMs + 100)

    const from = kit.requests.length
    const started = performance.now()
    const upload = await fetch(`${server.url}/api/v1/syncs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sessionToken(secrets.jwtSecret, server.url, COMMUNITY)}`, 'content-type': 'text/csv' },
      body: fileOf(run.members),
    })
    if (upload.status !== 202) throw new Error(`POST /syncs answered ${upload.status}: ${await upload.text()}`)
    const uploadSeconds = (performance.now() - started) / 1000
    const { id } = (await upload.json()) as SyncAnswer
    log(`sync (${run.label}): file of ${run.members} members accepted in ${uploadSeconds.toFixed(2)} s; syncing…`)

    let sync: SyncAnswer
    let lastLog = performance.now()
    for (;;) {
      const res = await client.call('GET', `/syncs/${id}`)
      if (res.status !== 200) throw new Error(`GET /syncs/${id} answered ${res.status}`)
      sync = res.body as SyncAnswer
      if (sync.status === 'completed' || sync.status === 'cancelled') break
      if (performance.now() - lastLog > 15_000) {
        lastLog = performance.now()
        log(
          `sync (${run.label}): ${Math.round((lastLog - started) / 1000)} s — ${sync.done}/${sync.total} done, ${sync.kit_requests} Kit requests`,
        )
      }
      // Within the settings API's 120 requests a minute for one user.
      await sleep(600)
    }
    const seconds = (performance.now() - started) / 1000
    const made = pipelineRequests(kit.requests, from)
    const check = checkKit(
      kit.account(KEY),
      Array.from({ length: run.members }, (_, i) => ({
        email: `member${i}@example.com`,
        tags: ['Imported'],
        fields: { plan: `plan-${i % 4}`, company: `Company ${i % 50}` },
      })),
    )
    if (!check.ok) log(`sync (${run.label}): end state wrong: ${describeCheck(check)}`)
    return {
      seconds,
      uploadSeconds,
      requests: made.length,
      perMember: made.length / run.members,
      throttled: made.filter((r) => r.status === 429).length,
      ok: check.ok,
      done: sync.done,
      kinds: breakdown(made),
    }
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
}

export async function syncBenchmark(): Promise<Outcome[]> {
  const keyRun: Run = { label: 'api key', members: envInt('BENCH_SYNC_KEY_MEMBERS', 1000), limit: KEY_LIMIT, windowMs: KEY_WINDOW_MS }
  const oauthRun: Run = { label: 'oauth', members: envInt('BENCH_SYNC_MEMBERS', 10_000), limit: OAUTH_LIMIT, windowMs: OAUTH_WINDOW_MS }
  const outcomes: Outcome[] = []

  log(
    `sync (api key): ${keyRun.members} members, Kit limit ${KEY_LIMIT} requests / ${KEY_WINDOW_MS / 1000} s at the stand-in and in the server`,
  )
  const key = await runSync(keyRun)
  const perMinute = (KEY_LIMIT / KEY_WINDOW_MS) * 60_000
  const measured = keyRun.members / (key.seconds / 60)
  const floor = perMinute / key.perMember
  const ratio = measured / floor
  const realMinutes = (10_000 * key.perMember) / API_KEY_PER_MINUTE / ratio
  log(
    `sync (api key): ${key.requests} Kit requests (${key.perMember.toFixed(3)} a member, ${key.throttled} × 429): ${JSON.stringify(key.kinds)}`,
  )
  const keyPass = ratio >= 0.9 && key.throttled <= 2 && key.ok && key.done === keyRun.members
  outcomes.push({
    name: 'sync_api_key',
    figures: {
      members: keyRun.members,
      kit_limit: `${KEY_LIMIT} / ${KEY_WINDOW_MS / 1000} s`,
      seconds: round(key.seconds, 1),
      kit_requests: key.requests,
      kit_requests_per_member: round(key.perMember, 3),
      members_per_minute: round(measured, 1),
      floor_members_per_minute: round(floor, 1),
      ratio_to_floor: round(ratio, 3),
      minutes_for_10000_at_120_a_minute: round(realMinutes, 1),
      responses_429: key.throttled,
      end_state_ok: key.ok,
    },
    goal: 'members a minute ≥ 0.90 × the budget floor',
    status: verdictOf(keyPass),
    verdict: `${measured.toFixed(0)} members/min against a floor of ${floor.toFixed(0)}/min → ${ratio.toFixed(3)} × floor, ${key.perMember.toFixed(3)} Kit requests a member; 10,000 members at Kit's 120 a minute: about ${realMinutes.toFixed(0)} min${key.ok ? '' : ' — end state wrong'}`,
  })
  printOutcome(outcomes[0]!)

  log(
    `sync (oauth): ${oauthRun.members} members, Kit's OAuth budget ${OAUTH_LIMIT} requests / ${OAUTH_WINDOW_MS / 1000} s at the stand-in and in the server`,
  )
  const bulk = await runSync(oauthRun)
  const floorSeconds = Math.max(0, (bulk.requests - OAUTH_LIMIT) / (OAUTH_LIMIT / (OAUTH_WINDOW_MS / 1000)))
  const scaledTo10k = (bulk.seconds * 10_000) / oauthRun.members
  log(
    `sync (oauth): ${bulk.requests} Kit requests (${bulk.perMember.toFixed(4)} a member, ${bulk.throttled} × 429): ${JSON.stringify(bulk.kinds)}`,
  )
  const bulkPass = bulk.perMember <= 0.05 && scaledTo10k <= 60 && bulk.ok && bulk.done === oauthRun.members && bulk.throttled === 0
  outcomes.push({
    name: 'sync_oauth_bulk',
    figures: {
      members: oauthRun.members,
      kit_limit: `${OAUTH_LIMIT} / ${OAUTH_WINDOW_MS / 1000} s`,
      seconds: round(bulk.seconds, 1),
      upload_seconds: round(bulk.uploadSeconds, 2),
      kit_requests: bulk.requests,
      kit_requests_per_member: round(bulk.perMember, 4),
      floor_seconds: round(floorSeconds, 1),
      seconds_for_10000: round(scaledTo10k, 1),
      responses_429: bulk.throttled,
      end_state_ok: bulk.ok,
      requests_vs_api_key: round(bulk.perMember / key.perMember, 4),
    },
    goal: '≤ 0.05 Kit requests a member and ≤ 60 s for 10,000 members at 600 requests a minute',
    status: verdictOf(bulkPass),
    verdict: `${oauthRun.members} members in ${bulk.seconds.toFixed(1)} s (floor ${floorSeconds.toFixed(1)} s), ${bulk.perMember.toFixed(4)} Kit requests a member — ${(key.perMember / bulk.perMember).toFixed(0)}× fewer than with an API key${bulk.ok ? '' : ' — end state wrong'}`,
  })
  printOutcome(outcomes[1]!)
  return outcomes
}

runIfMain(import.meta.url, syncBenchmark, RESULTS)
