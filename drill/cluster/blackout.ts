/**
 * Cluster drill: Kit blackout. Events arrive evenly at the three instances (HTTP in turn, every
 * third member on the bus) for the whole drill; from 5 s on Kit is dark for DRILL_CLUSTER_BLACKOUT_MS
 * (default 30 000) — the proxy all instances share answers 503 (HTML), 502 (JSON) or drops the
 * connection. Intake must keep accepting, and everything must land in Kit once it is back.
 *
 * DRILL_CLUSTER_BLACKOUT_MEMBERS (default 60) members × 4 lifecycle events.
 */
import { envInt, sleep } from '../../bench/lib/env.ts'
import { lifecycle, member } from '../../bench/lib/events.ts'
import { log, type Outcome } from '../../bench/lib/report.ts'
import { api, connect } from '../../bench/lib/session.ts'
import { finish, Ledger } from '../common.ts'
import { clean, examine } from './examine.ts'
import { INSTANCES, startStack } from './stack.ts'

const COMMUNITY = 'c_cluster_blackout'
const RATE = { limit: 200, windowMs: 1_000 }
const LEAD_MS = 5_000

export async function clusterBlackoutDrill(): Promise<Outcome> {
  const blackoutMs = envInt('DRILL_CLUSTER_BLACKOUT_MS', 30_000)
  const count = envInt('DRILL_CLUSTER_BLACKOUT_MEMBERS', 60)
  const flowMs = LEAD_MS + blackoutMs + LEAD_MS
  log(
    `blackout: ${INSTANCES} instances behind one proxy; ${count} members × 4 events over ${flowMs / 1000} s; Kit dark from ${LEAD_MS / 1000} s for ${blackoutMs / 1000} s`,
  )
  const stack = await startStack({ label: 'blackout', rate: RATE, proxy: true, bus: true })
  const proxy = stack.proxy
  if (!proxy) throw new Error('the blackout drill needs the proxy')
  const ledger = new Ledger()
  try {
    const first = stack.cluster.instances[0]
    if (!first) throw new Error('instance 1 is not up')
    await connect(api(first.url, stack.secrets.jwtSecret, COMMUNITY), stack.key)
    const members = Array.from({ length: count }, (_, i) => member(COMMUNITY, 'cblackout', i))
    const t0 = Date.now()
    const darkAt = t0 + LEAD_MS
    const lightAt = darkAt + blackoutMs
    const blackout = (async () => {
      await sleep(darkAt - Date.now())
      proxy.setDown(true)
      log('blackout: Kit is dark for every instance')
      await sleep(lightAt - Date.now())
      proxy.setDown(false)
      log(`blackout: Kit is back (refused while dark: ${JSON.stringify(proxy.refused)})`)
    })()
    let duringBlackout = 0
    for (const [i, m] of members.entries()) {
      await sleep(Math.max(0, t0 + (i * flowMs) / count - Date.now()))
      const events = lifecycle(m, Date.now() - 60_000)
      const now = Date.now()
      if (now >= darkAt && now < lightAt) duringBlackout += events.length
      ledger.record(events, i % 3 === 2 ? await stack.publish(events) : await stack.post(events, 1))
    }
    await blackout
    const accepted = ledger.accepted()
    const notAccepted = ledger.refused().length + ledger.unanswered().length
    log(
      `blackout: ${accepted.length} events accepted (${duringBlackout} while Kit was dark), ${notAccepted} not accepted; waiting for delivery…`,
    )
    const result = await examine(stack, ledger, members, 'blackout', blackoutMs + 300_000)
    const recoveredS = (Date.now() - lightAt) / 1000
    const ok = clean(result, accepted.length) && notAccepted === 0
    return finish({
      name: 'cluster-blackout',
      figures: {
        instances: INSTANCES,
        blackout_seconds: blackoutMs / 1000,
        accepted: accepted.length,
        accepted_while_dark: duringBlackout,
        intake_not_accepted: notAccepted,
        refused_by_dark_kit: proxy.refused,
        deliveries: result.counts,
        seconds_to_drain_after_restore: Math.round(recoveredS * 10) / 10,
        lost: result.lost,
        doubled: result.doubled,
        members_right_in_kit: `${result.check.correct}/${result.check.members}`,
      },
      goal: 'intake unaffected; everything delivered once after Kit returns',
      status: ok ? 'pass' : 'fail',
      verdict:
        `${blackoutMs / 1000} s Kit blackout for ${INSTANCES} instances: ${accepted.length} events accepted (${duringBlackout} during it, ${notAccepted} not accepted), ` +
        `${result.counts.succeeded} delivered, ${result.counts.failed} failed, all done ${recoveredS.toFixed(1)} s after Kit came back; ` +
        `${result.check.correct}/${result.check.members} members exactly right in Kit; lost ${result.lost}, doubled ${result.doubled}${ok ? '' : ` — ${result.line}`}`,
    })
  } finally {
    await stack.close()
  }
}
