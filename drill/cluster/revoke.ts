/**
 * Cluster drill: key revoked and restored across instances. The key is saved through instance 1,
 * a backlog goes to all three; once a quarter is delivered the key is revoked at the stand-in.
 * Instance 2 must then report the connection `invalid`, every waiting delivery must be `held` (or
 * `pending` behind a held one of the same member) whichever instance claimed it, new events are
 * still accepted and nothing more succeeds. The key is restored and saved again through instance 3:
 * everything must land once.
 *
 * DRILL_CLUSTER_REVOKE_MEMBERS (default 60) members × 4 events before the revoke, a sixth more during it.
 */
import { envInt, sleep } from '../../bench/lib/env.ts'
import { lifecycleBacklog } from '../../bench/lib/events.ts'
import { log, type Outcome } from '../../bench/lib/report.ts'
import type { ServerHandle } from '../../bench/lib/server.ts'
import { api, connect, connectionStatus } from '../../bench/lib/session.ts'
import { finish, Ledger } from '../common.ts'
import { clean, examine } from './examine.ts'
import { startStack } from './stack.ts'

const COMMUNITY = 'c_cluster_revoke'
const RATE = { limit: 40, windowMs: 1_000 }

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== null) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
    await sleep(100)
  }
}

export async function clusterRevokeDrill(): Promise<Outcome> {
  const count = envInt('DRILL_CLUSTER_REVOKE_MEMBERS', 60)
  const stack = await startStack({ label: 'revoke', rate: RATE })
  const ledger = new Ledger()
  try {
    const [one, two, three] = stack.cluster.instances as [ServerHandle, ServerHandle, ServerHandle]
    const client = (server: ServerHandle) => api(server.url, stack.secrets.jwtSecret, COMMUNITY)
    await connect(client(one), stack.key)
    const before = lifecycleBacklog(COMMUNITY, 'crevoke', count, Date.now() - 600_000)
    ledger.record(before.events, await stack.post(before.events))
    const total = before.events.length
    log(`revoke: ${total} events accepted by 3 instances; revoking the key once a quarter is delivered`)
    await until('a quarter delivered', 60_000, async () => ((await stack.store.counts()).succeeded >= total / 4 ? true : null))

    stack.kit.revokeKey(stack.key)
    const revokedAt = Date.now()
    const revokedFrom = stack.kit.requests.length
    await until('instance 2 to report the connection invalid', 30_000, async () =>
      (await connectionStatus(client(two))) === 'invalid' ? true : null,
    )
    const settled = await until('every waiting delivery to be held or queued behind a held one', 30_000, async () => {
      const c = await stack.store.counts()
      return c.held > 0 && (await stack.store.waitingUnblocked()) === 0 ? c : null
    })
    log(`revoke: instance 2 says invalid after ${Date.now() - revokedAt} ms; ${JSON.stringify(settled)}`)
    const during = lifecycleBacklog(COMMUNITY, 'crevoke-during', Math.max(1, Math.round(count / 6)), Date.now() - 300_000)
    ledger.record(during.events, await stack.post(during.events))
    await sleep(3_000)
    const whileRevoked = await stack.store.counts()
    const requestsWhileRevoked = stack.kit.requests.length - revokedFrom
    const rejected401 = stack.kit.requests.slice(revokedFrom).filter((r) => r.status === 401).length
    log(
      `revoke: 3 s after ${during.events.length} more events: ${JSON.stringify(whileRevoked)}; ${requestsWhileRevoked} Kit requests since the revoke (${rejected401} × 401)`,
    )

    stack.kit.restoreKey(stack.key)
    await connect(client(three), stack.key)
    const restoredAt = Date.now()
    const statuses = await Promise.all([one, two, three].map((s) => connectionStatus(client(s))))
    log(`revoke: key restored and saved again through instance 3; the instances say ${statuses.join(', ')}`)
    const result = await examine(stack, ledger, [...before.members, ...during.members], 'revoke', 120_000)
    const resumedS = (Date.now() - restoredAt) / 1000
    const heldNeverSent = whileRevoked.succeeded === settled.succeeded
    const notAccepted = ledger.refused().length + ledger.unanswered().length
    const ok = clean(result, ledger.accepted().length) && heldNeverSent && notAccepted === 0
    return finish({
      name: 'cluster-revoke',
      figures: {
        accepted: ledger.accepted().length,
        accepted_while_revoked: during.events.length,
        held_at_revoke: settled.held,
        kit_requests_while_revoked: requestsWhileRevoked,
        kit_401s: rejected401,
        status_after_resave: statuses,
        deliveries: result.counts,
        seconds_to_drain_after_resave: Math.round(resumedS * 10) / 10,
        lost: result.lost,
        doubled: result.doubled,
        members_right_in_kit: `${result.check.correct}/${result.check.members}`,
      },
      goal: 'held on every instance while revoked; everything delivered once after the key is saved again',
      status: ok ? 'pass' : 'fail',
      verdict:
        `key revoked mid-backlog: instance 2 reported invalid, ${settled.held} deliveries held (${requestsWhileRevoked} Kit requests, ${rejected401} × 401, after the revoke; ` +
        `${heldNeverSent ? 'none' : 'some'} succeeded while revoked); saved again through instance 3: ${result.counts.succeeded}/${ledger.accepted().length} delivered, ` +
        `${result.counts.failed} failed; ${result.check.correct}/${result.check.members} members exactly right in Kit; lost ${result.lost}, doubled ${result.doubled}${ok ? '' : ` — ${result.line}`}`,
    })
  } finally {
    await stack.close()
  }
}
