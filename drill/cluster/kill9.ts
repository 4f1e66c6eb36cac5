/**
 * Cluster drill: kill -9 of one instance mid-backlog, DRILL_CLUSTER_KILL_ROUNDS times (default 5).
 * Each round sends a backlog of new members' lifecycle events — half of the members over HTTP to
 * the three instances in turn, half on the bus — then SIGKILLs one instance (a different one each
 * round) at a random moment and starts it again. Events an instance never answered are posted
 * again to the others, as the platform would. Messages the killed instance had pulled from the
 * bus come back to the others once their ack wait ends. Finally everything must drain: every
 * accepted event stored once with one delivery, every member exactly right in Kit.
 *
 * DRILL_CLUSTER_KILL_MEMBERS (members per round, default 30).
 */
import { envInt, sleep } from '../../bench/lib/env.ts'
import { lifecycleBacklog, type Member, type MemberEvent } from '../../bench/lib/events.ts'
import { log, type Outcome } from '../../bench/lib/report.ts'
import { api, connect } from '../../bench/lib/session.ts'
import { finish, Ledger } from '../common.ts'
import { clean, examine } from './examine.ts'
import { INSTANCES, startStack } from './stack.ts'

const COMMUNITY = 'c_cluster_kill'
const RATE = { limit: 60, windowMs: 1_000 }

export async function clusterKill9Drill(): Promise<Outcome> {
  const rounds = envInt('DRILL_CLUSTER_KILL_ROUNDS', 5)
  const perRound = envInt('DRILL_CLUSTER_KILL_MEMBERS', 30)
  log(
    `kill9: ${INSTANCES} instances, ${rounds} rounds × ${perRound} members × 4 events (half over HTTP, half on the bus), Kit limit ${RATE.limit} / ${RATE.windowMs / 1000} s`,
  )
  const stack = await startStack({ label: 'kill9', rate: RATE, bus: true })
  const ledger = new Ledger()
  const members: Member[] = []
  let busEvents = 0
  try {
    const first = stack.cluster.instances[0]
    if (!first) throw new Error('instance 1 is not up')
    await connect(api(first.url, stack.secrets.jwtSecret, COMMUNITY), stack.key)
    for (let round = 1; round <= rounds; round++) {
      const victim = (round - 1) % INSTANCES
      const backlog = lifecycleBacklog(COMMUNITY, `cround${round}`, perRound, Date.now() - 600_000 + round * 10_000)
      members.push(...backlog.members)
      const onBus = new Set(backlog.members.filter((_, i) => i % 2 === 0).map((m) => m.id))
      const memberOf = (e: MemberEvent) => e.subject.slice('members/'.length)
      const http = backlog.events.filter((e) => !onBus.has(memberOf(e)))
      const bus = backlog.events.filter((e) => onBus.has(memberOf(e)))
      busEvents += bus.length
      const delay = Math.round(Math.random() * (round % 2 === 0 ? 150 : 2_500))
      const posting = stack.post(http)
      const publishing = stack.publish(bus)
      await sleep(delay)
      await stack.cluster.kill(victim, 'SIGKILL')
      ledger.record(http, await posting)
      ledger.record(bus, await publishing)
      const counts = await stack.store.counts()
      await stack.cluster.start(victim)
      const resend = ledger.unanswered()
      if (resend.length) ledger.record(resend, await stack.post(resend))
      log(
        `kill9: round ${round}: SIGKILL of instance ${victim + 1} ${delay} ms after the round began, restarted; ` +
          `${counts.succeeded + counts.skipped + counts.failed} deliveries terminal, ${counts.pending + counts.retrying + counts.held} waiting; ` +
          `${ledger.accepted().length} events accepted so far, ${resend.length} posted again`,
      )
    }
    const accepted = ledger.accepted()
    const result = await examine(stack, ledger, members, 'kill9', 300_000)
    const refused = ledger.refused().length + ledger.unanswered().length
    const ok = clean(result, accepted.length) && refused === 0
    return finish({
      name: 'cluster-kill9',
      figures: {
        instances: INSTANCES,
        rounds,
        events_sent: rounds * perRound * 4,
        on_the_bus: busEvents,
        accepted: accepted.length,
        not_accepted: refused,
        lost: result.lost,
        doubled: result.doubled,
        deliveries: result.counts,
        members_right_in_kit: `${result.check.correct}/${result.check.members}`,
        tag_calls_redone: result.tagCallsRedone,
      },
      goal: 'nothing lost, nothing doubled',
      status: ok ? 'pass' : 'fail',
      verdict:
        `${rounds} SIGKILLs across ${INSTANCES} instances: ${accepted.length} events accepted (${busEvents} on the bus), ${result.counts.succeeded} delivered ` +
        `(${result.counts.skipped} skipped as stale, ${result.counts.failed} failed), ${result.check.correct}/${result.check.members} members exactly right in Kit; ` +
        `lost ${result.lost}, doubled ${result.doubled}${ok ? '' : ` — ${result.line}`}`,
    })
  } finally {
    await stack.close()
  }
}
