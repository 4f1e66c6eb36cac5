/**
 * Drill: Kit blackout. Events flow in steadily for the whole drill; in the middle, Kit goes dark
 * for DRILL_BLACKOUT_MS (default 60 000) — every request answered 503 (HTML), 502 (JSON) or
 * dropped, by a switchable proxy in front of the stand-in. Then Kit comes back. Intake must keep
 * answering 202 throughout, and every event must land in Kit once.
 *
 * DRILL_BLACKOUT_MEMBERS (default 60) members × 4 lifecycle events are sent.
 */
import { DeliveryReader, waitTerminal } from '../bench/lib/deliveries.ts'
import { envInt, newSecrets, sleep, tempDir } from '../bench/lib/env.ts'
import { LIFECYCLE_FIELDS, LIFECYCLE_TAGS, lifecycle, member, postAll } from '../bench/lib/events.ts'
import { log, runIfMain, type Outcome } from '../bench/lib/report.ts'
import { startServer } from '../bench/lib/server.ts'
import { api, connect } from '../bench/lib/session.ts'
import { checkKit, describeCheck } from '../bench/lib/verify.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'
import { finish, Ledger, repeatedTagCalls, RESULTS, withServerLog } from './common.ts'
import { startKitProxy } from './proxy.ts'

const KEY = 'kit_drill_blackout_key'
const COMMUNITY = 'c_blackout'
const RATE = { limit: 200, windowMs: 1_000 }
const LEAD_MS = 5_000

export async function blackoutDrill(): Promise<Outcome> {
  const blackoutMs = envInt('DRILL_BLACKOUT_MS', 60_000)
  const count = envInt('DRILL_BLACKOUT_MEMBERS', 60)
  const flowMs = LEAD_MS + blackoutMs + LEAD_MS
  log(
    `blackout: ${count} members × 4 events sent evenly over ${flowMs / 1000} s; Kit dark from ${LEAD_MS / 1000} s for ${blackoutMs / 1000} s`,
  )
  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: RATE })
  const proxy = await startKitProxy(kit.url)
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir('kit-drill-blackout'),
    secrets,
    kitUrl: proxy.url,
    rateLimit: RATE.limit,
    rateWindowMs: RATE.windowMs,
  })
  const ledger = new Ledger()
  try {
    await connect(api(server.url, secrets.jwtSecret, COMMUNITY), KEY)
    const members = Array.from({ length: count }, (_, i) => member(COMMUNITY, 'blackout', i))
    const t0 = Date.now()
    const darkAt = t0 + LEAD_MS
    const lightAt = darkAt + blackoutMs
    const blackout = (async () => {
      await sleep(darkAt - Date.now())
      proxy.setDown(true)
      log('blackout: Kit is dark')
      await sleep(lightAt - Date.now())
      proxy.setDown(false)
      log(
        `blackout: Kit is back (${proxy.refused.html503 + proxy.refused.json502 + proxy.refused.dropped} requests refused while dark: ${JSON.stringify(proxy.refused)})`,
      )
    })()
    let duringBlackout = 0
    for (const [i, m] of members.entries()) {
      await sleep(Math.max(0, t0 + (i * flowMs) / count - Date.now()))
      const events = lifecycle(m, Date.now() - 60_000)
      const now = Date.now()
      if (now >= darkAt && now < lightAt) duringBlackout += events.length
      ledger.record(events, await postAll(server.url, secrets.hmacKey, events, 1))
    }
    await blackout
    const accepted = ledger.accepted()
    const refusedIntake = ledger.refused().length + ledger.unanswered().length
    log(
      `blackout: ${accepted.length} events accepted (${duringBlackout} while Kit was dark), ${refusedIntake} not accepted; waiting for delivery…`,
    )
    const reader = new DeliveryReader(server.databasePath)
    const counts = await withServerLog(
      server,
      waitTerminal(reader, accepted.length, {
        timeoutMs: blackoutMs + 300_000,
        onProgress: (c) => log(`blackout: ${Math.round((Date.now() - lightAt) / 1000)} s after Kit came back: ${JSON.stringify(c)}`),
      }),
    )
    const recoveredMs = Date.now() - lightAt
    const stored = reader.storedIds()
    const integrity = reader.integrity()
    reader.close()
    const lost = accepted.filter((e) => !stored.has(e.id)).length
    const check = checkKit(
      kit.account(KEY),
      members.map((m) => ({ email: m.email, tags: LIFECYCLE_TAGS, fields: LIFECYCLE_FIELDS })),
    )
    const doubled = integrity.duplicateEvents + integrity.duplicateDeliveries + check.duplicated.length + check.duplicateTagNames.length
    const repeated = repeatedTagCalls(kit.requests)
    log(
      `blackout: deliveries ${JSON.stringify(counts)}, all terminal ${(recoveredMs / 1000).toFixed(1)} s after Kit came back; ${describeCheck(check)}; tag calls redone: ${repeated}`,
    )
    const ok = lost === 0 && doubled === 0 && check.ok && counts.failed === 0 && refusedIntake === 0
    return finish({
      name: 'blackout',
      figures: {
        blackout_seconds: blackoutMs / 1000,
        accepted: accepted.length,
        accepted_while_dark: duringBlackout,
        intake_not_accepted: refusedIntake,
        refused_by_dark_kit: proxy.refused,
        deliveries: counts,
        seconds_to_drain_after_restore: Math.round(recoveredMs / 100) / 10,
        lost,
        doubled,
        members_right_in_kit: `${check.correct}/${check.members}`,
      },
      goal: 'intake unaffected; everything delivered once after Kit returns',
      status: ok ? 'pass' : 'fail',
      verdict: `${blackoutMs / 1000} s Kit blackout: ${accepted.length} events accepted (${duringBlackout} during it, ${refusedIntake} refused), ${counts.succeeded} delivered, ${counts.failed} failed, all done ${(recoveredMs / 1000).toFixed(1)} s after Kit came back; ${check.correct}/${check.members} members exactly right in Kit; lost ${lost}, doubled ${doubled}`,
    })
  } finally {
    await server.kill('SIGTERM')
    await proxy.close()
    await kit.close()
  }
}

runIfMain(import.meta.url, async () => [await blackoutDrill()], RESULTS)
