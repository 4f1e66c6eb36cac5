/**
 * Benchmark — initial sync: members brought over per minute, against the floor Kit's budget sets.
 * A fresh stand-in account and a server both limited to LIMIT requests per WINDOW_MS (a scaled-down
 * 120-a-minute API key, so the run is short); one member field mapped, the default snapshot mapping
 * (subscriber and fields). The clock runs from the upload until the sync is completed.
 * Floor: the members a minute the budget allows at the Kit requests a member actually cost,
 * (LIMIT / WINDOW) ÷ (requests / member). Goal: within 10 % of it (ratio ≥ 0.90).
 *
 * BENCH_SYNC_MEMBERS (default 1500) sets the file's size.
 */
import { performance } from 'node:perf_hooks'
import { envInt, newSecrets, round, sleep, tempDir } from './lib/env.ts'
import { log, printOutcome, runIfMain, verdictOf, type Outcome } from './lib/report.ts'
import { startServer } from './lib/server.ts'
import { api, connect, sessionToken } from './lib/session.ts'
import { breakdown, pipelineRequests } from './lib/standin.ts'
import { checkKit, describeCheck } from './lib/verify.ts'
import { RESULTS } from './intake.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const KEY = 'kit_bench_sync_key'
const COMMUNITY = 'c_sync'
const LIMIT = 40
const WINDOW_MS = 2_000
/** Kit's real budget for an API key, to say what the measured ratio means there. */
const API_KEY_PER_MINUTE = 120

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

export async function syncBenchmark(): Promise<Outcome[]> {
  const members = envInt('BENCH_SYNC_MEMBERS', 1500)
  const perMinute = (LIMIT / WINDOW_MS) * 60_000
  log(
    `sync: ${members} members, Kit limit ${LIMIT} requests / ${WINDOW_MS / 1000} s (${perMinute} a minute) at the stand-in and in the server`,
  )

  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } })
  const secrets = newSecrets()
  const server = await startServer({ dir: tempDir('kit-bench-sync'), secrets, kitUrl: kit.url, rateLimit: LIMIT, rateWindowMs: WINDOW_MS })
  try {
    const client = api(server.url, secrets.jwtSecret, COMMUNITY)
    await connect(client, KEY)
    const mappings = (await client.call('GET', '/mappings')).body as { fields: unknown[] }
    mappings.fields = [{ source: 'mk_plan', kit_field: { key: 'plan', label: 'Plan' } }]
    const saved = await client.call('PUT', '/mappings', mappings)
    if (saved.status !== 200) throw new Error(`PUT /mappings answered ${saved.status}`)
    await sleep(WINDOW_MS + 100)

    const lines = ['email,member_id,first_name,mk_plan']
    for (let i = 0; i < members; i++) lines.push(`member${i}@example.com,m_${i},Member ${i},plan-${i % 4}`)
    const from = kit.requests.length
    const started = performance.now()
    const upload = await fetch(`${server.url}/api/v1/syncs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sessionToken(secrets.jwtSecret, server.url, COMMUNITY)}`, 'content-type': 'text/csv' },
      body: `${lines.join('\n')}\n`,
    })
    if (upload.status !== 202) throw new Error(`POST /syncs answered ${upload.status}: ${await upload.text()}`)
    const uploadMs = performance.now() - started
    const { id } = (await upload.json()) as SyncAnswer
    log(`sync: file of ${members} members accepted in ${(uploadMs / 1000).toFixed(2)} s; syncing…`)

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
          `sync: ${Math.round((lastLog - started) / 1000)} s — ${sync.done}/${sync.total} done, ${sync.kit_requests} Kit requests, about ${sync.estimated_seconds_left} s left`,
        )
      }
      await sleep(1000)
    }
    const seconds = (performance.now() - started) / 1000
    const made = pipelineRequests(kit.requests, from)
    const throttled = made.filter((r) => r.status === 429).length
    const perMember = made.length / members
    const measured = members / (seconds / 60)
    const floor = perMinute / perMember
    const ratio = measured / floor
    const check = checkKit(
      kit.account(KEY),
      Array.from({ length: members }, (_, i) => ({ email: `member${i}@example.com`, tags: [], fields: { plan: `plan-${i % 4}` } })),
    )
    log(
      `sync: done in ${seconds.toFixed(1)} s; ${made.length} Kit requests (${perMember.toFixed(3)} a member, ${throttled} × 429): ${JSON.stringify(breakdown(made))}`,
    )
    log(
      `sync: ${measured.toFixed(0)} members a minute against a floor of ${floor.toFixed(0)} a minute → ratio ${ratio.toFixed(3)}; ${describeCheck(check)}`,
    )
    log(
      `sync: at an API key's ${API_KEY_PER_MINUTE} requests a minute that is about ${((API_KEY_PER_MINUTE / perMember) * ratio).toFixed(0)} members a minute (100,000 members in about ${(100_000 / ((API_KEY_PER_MINUTE / perMember) * ratio) / 60).toFixed(1)} h)`,
    )
    const pass = ratio >= 0.9 && throttled <= 2 && check.ok && sync.done === members
    const outcome: Outcome = {
      name: 'sync',
      figures: {
        members,
        kit_limit: `${LIMIT} / ${WINDOW_MS / 1000} s`,
        seconds: round(seconds, 1),
        upload_seconds: round(uploadMs / 1000, 2),
        kit_requests: made.length,
        kit_requests_per_member: round(perMember, 3),
        members_per_minute: round(measured, 1),
        floor_members_per_minute: round(floor, 1),
        ratio_to_floor: round(ratio, 3),
        responses_429: throttled,
        end_state_ok: check.ok,
      },
      goal: 'members a minute ≥ 0.90 × the budget floor',
      status: verdictOf(pass),
      verdict: `${measured.toFixed(0)} members/min against a floor of ${floor.toFixed(0)}/min → ${ratio.toFixed(3)} × floor, ${perMember.toFixed(3)} Kit requests a member, ${throttled} × 429${check.ok ? '' : ` — end state wrong: ${describeCheck(check)}`}`,
    }
    printOutcome(outcome)
    return [outcome]
  } finally {
    await server.kill('SIGTERM')
    await kit.close()
  }
}

runIfMain(import.meta.url, syncBenchmark, RESULTS)
