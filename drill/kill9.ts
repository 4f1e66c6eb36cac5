/**
 * Drill: kill -9. Ten rounds of: (re)start the server on the same database, send a backlog of
 * lifecycle events for new members, SIGKILL the server at a random moment (some rounds while it is
 * still answering the posts, most while it works through the backlog). Events the server never
 * answered are sent again after the restart, as the platform would. At the end every delivery
 * must be terminal and Kit must hold every accepted event's effect exactly once.
 *
 * DRILL_KILL_ROUNDS (default 10), DRILL_KILL_MEMBERS (members per round, default 25).
 */
import { DeliveryReader, waitTerminal } from '../bench/lib/deliveries.ts'
import { envInt, freePort, newSecrets, sleep, tempDir } from '../bench/lib/env.ts'
import { LIFECYCLE_FIELDS, LIFECYCLE_TAGS, lifecycleBacklog, postAll, type Member } from '../bench/lib/events.ts'
import { log, runIfMain, type Outcome } from '../bench/lib/report.ts'
import { startServer, type ServerHandle } from '../bench/lib/server.ts'
import { api, connect } from '../bench/lib/session.ts'
import { checkKit, describeCheck } from '../bench/lib/verify.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'
import { finish, Ledger, repeatedTagCalls, RESULTS, withServerLog } from './common.ts'

const KEY = 'kit_drill_kill_key'
const COMMUNITY = 'c_kill'
const RATE = { limit: 40, windowMs: 1_000 }

export async function kill9Drill(): Promise<Outcome> {
  const rounds = envInt('DRILL_KILL_ROUNDS', 10)
  const perRound = envInt('DRILL_KILL_MEMBERS', 25)
  log(`kill -9: ${rounds} rounds × ${perRound} members × 4 events, Kit limit ${RATE.limit} / ${RATE.windowMs / 1000} s`)
  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: RATE })
  const secrets = newSecrets()
  const dir = tempDir('kit-drill-kill')
  const port = await freePort()
  const start = () => startServer({ dir, secrets, kitUrl: kit.url, port, rateLimit: RATE.limit, rateWindowMs: RATE.windowMs })
  const ledger = new Ledger()
  const members: Member[] = []
  let server: ServerHandle | null = null
  try {
    server = await start()
    await connect(api(server.url, secrets.jwtSecret, COMMUNITY), KEY)
    for (let round = 1; round <= rounds; round++) {
      server ??= await start()
      const resend = ledger.unanswered()
      if (resend.length) ledger.record(resend, await postAll(server.url, secrets.hmacKey, resend))
      const backlog = lifecycleBacklog(COMMUNITY, `round${round}`, perRound, Date.now() - 600_000 + round * 10_000)
      members.push(...backlog.members)
      const duringIntake = round % 3 === 0
      const delay = Math.round(Math.random() * (duringIntake ? 120 : 2_500))
      const posting = postAll(server.url, secrets.hmacKey, backlog.events)
      await sleep(delay)
      const reader = new DeliveryReader(server.databasePath)
      const counts = reader.counts()
      reader.close()
      await server.kill('SIGKILL')
      server = null
      ledger.record(backlog.events, await posting)
      const terminal = counts.succeeded + counts.skipped + counts.failed
      log(
        `kill -9: round ${round}: SIGKILL ${delay} ms after the posts began — ${terminal} deliveries terminal, ${counts.pending + counts.retrying} waiting; ` +
          `${ledger.accepted().length} events accepted so far, ${ledger.unanswered().length} unanswered (to resend)`,
      )
    }
    server = await start()
    const resend = ledger.unanswered()
    if (resend.length) ledger.record(resend, await postAll(server.url, secrets.hmacKey, resend))
    const accepted = ledger.accepted()
    const reader = new DeliveryReader(server.databasePath)
    const counts = await withServerLog(
      server,
      waitTerminal(reader, accepted.length, { timeoutMs: 180_000, onProgress: (c) => log(`kill -9: draining ${JSON.stringify(c)}`) }),
    )
    const stored = reader.storedIds()
    const integrity = reader.integrity()
    const rows = reader.total()
    reader.close()
    const lost = accepted.filter((e) => !stored.has(e.id)).length
    const check = checkKit(
      kit.account(KEY),
      members.map((m) => ({ email: m.email, tags: LIFECYCLE_TAGS, fields: LIFECYCLE_FIELDS })),
    )
    const doubled = integrity.duplicateEvents + integrity.duplicateDeliveries + check.duplicated.length + check.duplicateTagNames.length
    const repeated = repeatedTagCalls(kit.requests)
    log(
      `kill -9: deliveries ${JSON.stringify(counts)}; ${rows} delivery rows for ${accepted.length} accepted events; ${integrity.eventsWithoutDelivery} events without a delivery`,
    )
    log(`kill -9: ${describeCheck(check)}; Kit tag calls redone after a crash (harmless): ${repeated}`)
    const ok = lost === 0 && doubled === 0 && check.ok && counts.failed === 0 && rows === accepted.length && ledger.refused().length === 0
    return finish({
      name: 'kill9',
      figures: {
        rounds,
        events_sent: rounds * perRound * 4,
        accepted: accepted.length,
        refused: ledger.refused().length,
        lost,
        doubled,
        deliveries: counts,
        members_right_in_kit: `${check.correct}/${check.members}`,
        tag_calls_redone: repeated,
      },
      goal: 'nothing lost, nothing doubled',
      status: ok ? 'pass' : 'fail',
      verdict: `${rounds} SIGKILLs: ${accepted.length} events accepted, ${counts.succeeded} delivered (${counts.skipped} skipped as stale, ${counts.failed} failed), ${check.correct}/${check.members} members exactly right in Kit; lost ${lost}, doubled ${doubled}${ok ? '' : ` — ${describeCheck(check)}`}`,
    })
  } finally {
    await server?.kill('SIGKILL')
    await kit.close()
  }
}

runIfMain(import.meta.url, async () => [await kill9Drill()], RESULTS)
