/**
 * Cluster drill: a burst beyond Kit's budget for ONE community and key, so the three instances
 * must share one budget. Kit's 120 requests a window, over a shorter window (DRILL_CLUSTER_BURST_WINDOW_MS,
 * default 10 000) at the stand-in and in every instance, so the run takes about a minute instead of
 * several. Enough events for at least 3 windows' budget are posted to all three instances at once.
 * Goal: at most 2 answers 429 across all instances, and the stand-in's own count of admitted
 * requests never above the limit in any rolling window (read back from its request log).
 *
 * DRILL_CLUSTER_BURST_MEMBERS (default 100) members × 4 events.
 */
import { envInt } from '../../bench/lib/env.ts'
import { lifecycleBacklog } from '../../bench/lib/events.ts'
import { log, type Outcome } from '../../bench/lib/report.ts'
import { api, connect } from '../../bench/lib/session.ts'
import { maxPerWindow, pipelineRequests } from '../../bench/lib/standin.ts'
import { finish, Ledger } from '../common.ts'
import { clean, examine } from './examine.ts'
import { INSTANCES, startStack } from './stack.ts'

const COMMUNITY = 'c_cluster_burst'
const LIMIT = 120

export async function clusterBurstDrill(): Promise<Outcome> {
  const windowMs = envInt('DRILL_CLUSTER_BURST_WINDOW_MS', 10_000)
  const count = envInt('DRILL_CLUSTER_BURST_MEMBERS', 100)
  log(
    `burst: ${count} members × 4 events for one community to ${INSTANCES} instances; Kit limit ${LIMIT} / ${windowMs / 1000} s at the stand-in and in each instance`,
  )
  const stack = await startStack({ label: 'burst', rate: { limit: LIMIT, windowMs } })
  const ledger = new Ledger()
  try {
    const first = stack.cluster.instances[0]
    if (!first) throw new Error('instance 1 is not up')
    await connect(api(first.url, stack.secrets.jwtSecret, COMMUNITY), stack.key)
    const from = stack.kit.requests.length
    const backlog = lifecycleBacklog(COMMUNITY, 'cburst', count)
    const started = Date.now()
    ledger.record(backlog.events, await stack.post(backlog.events, 24))
    const result = await examine(stack, ledger, backlog.members, 'burst', 20 * windowMs + 300_000)
    const seconds = (Date.now() - started) / 1000
    const made = pipelineRequests(stack.kit.requests, from)
    const throttled = made.filter((r) => r.status === 429).length
    const most = maxPerWindow(stack.kit.requests, windowMs, stack.key)
    const windowsOfBudget = made.length / LIMIT
    log(
      `burst: ${made.length} Kit requests (${windowsOfBudget.toFixed(1)} windows of budget) in ${seconds.toFixed(1)} s; ${throttled} × 429; at most ${most} admitted in any ${windowMs / 1000} s window (limit ${LIMIT})`,
    )
    const enough = windowsOfBudget >= 3
    const notAccepted = ledger.refused().length + ledger.unanswered().length
    const ok = clean(result, ledger.accepted().length) && throttled <= 2 && most <= LIMIT && enough && notAccepted === 0
    return finish({
      name: 'cluster-burst',
      figures: {
        instances: INSTANCES,
        kit_limit: `${LIMIT} / ${windowMs / 1000} s`,
        events: backlog.events.length,
        kit_requests: made.length,
        windows_of_budget: Math.round(windowsOfBudget * 10) / 10,
        responses_429: throttled,
        most_in_a_window: most,
        seconds: Math.round(seconds * 10) / 10,
        deliveries: result.counts,
        members_right_in_kit: `${result.check.correct}/${result.check.members}`,
      },
      goal: '≤ 2 × 429 across all instances, never more than the limit in a window',
      status: ok ? 'pass' : 'fail',
      verdict:
        `${backlog.events.length} events for one key through ${INSTANCES} instances: ${made.length} Kit requests (${windowsOfBudget.toFixed(1)} × the budget), ` +
        `${throttled} × 429, at most ${most}/${LIMIT} in a window; ${result.check.correct}/${result.check.members} members exactly right in Kit${enough ? '' : ' — too few requests to test the budget: raise DRILL_CLUSTER_BURST_MEMBERS'}${ok ? '' : ` — ${result.line}`}`,
    })
  } finally {
    await stack.close()
  }
}
