/**
 * Drill: key revoked and restored. Mid-backlog the Kit key is revoked at the stand-in: the
 * connection must turn `invalid` and the remaining deliveries wait — `held`, or `pending` behind a
 * held delivery of the same member — while events keep being accepted and nothing reaches Kit. Then the key is restored and saved again with
 * PUT /connection: everything held must resume and land in Kit exactly once.
 *
 * DRILL_REVOKE_MEMBERS (default 60) members × 4 events before the revoke, a sixth more during it.
 */
import { DeliveryReader, waitTerminal } from '../bench/lib/deliveries.ts'
import { envInt, newSecrets, sleep, tempDir } from '../bench/lib/env.ts'
import { LIFECYCLE_FIELDS, LIFECYCLE_TAGS, lifecycleBacklog, postAll } from '../bench/lib/events.ts'
import { log, runIfMain, type Outcome } from '../bench/lib/report.ts'
import { startServer } from '../bench/lib/server.ts'
import { api, connect, connectionStatus } from '../bench/lib/session.ts'
import { checkKit, describeCheck } from '../bench/lib/verify.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'
import { finish, Ledger, repeatedTagCalls, RESULTS, until, withServerLog } from './common.ts'

const KEY = 'kit_drill_revoke_key'
const COMMUNITY = 'c_revoke'
const RATE = { limit: 40, windowMs: 1_000 }

export async function revokeDrill(): Promise<Outcome> {
  const count = envInt('DRILL_REVOKE_MEMBERS', 60)
  const kit = await startKitStandin({ apiKeys: [KEY], rateLimit: RATE })
  const secrets = newSecrets()
  const server = await startServer({
    dir: tempDir('kit-drill-revoke'),
    secrets,
    kitUrl: kit.url,
    rateLimit: RATE.limit,
    rateWindowMs: RATE.windowMs,
  })
  const client = api(server.url, secrets.jwtSecret, COMMUNITY)
  const ledger = new Ledger()
  const reader = new DeliveryReader(server.databasePath)
  try {
    await connect(client, KEY)
    const before = lifecycleBacklog(COMMUNITY, 'revoke', count, Date.now() - 600_000)
    ledger.record(before.events, await postAll(server.url, secrets.hmacKey, before.events))
    const total = before.events.length
    log(`revoke: ${total} events accepted; revoking the key once a quarter is delivered`)
    await until('a quarter delivered', 60_000, () => (reader.counts().succeeded >= total / 4 ? true : null))

    kit.revokeKey(KEY)
    const revokedAt = Date.now()
    const revokedFrom = kit.requests.length
    await until('the connection to turn invalid', 30_000, async () => ((await connectionStatus(client)) === 'invalid' ? true : null))
    const settled = await until('every waiting delivery to be held or queued behind a held one', 30_000, () => {
      const c = reader.counts()
      return c.held > 0 && reader.waitingUnblocked() === 0 ? c : null
    })
    log(
      `revoke: connection invalid after ${Date.now() - revokedAt} ms; ${JSON.stringify(settled)} (pending ones wait behind a held delivery of the same member)`,
    )
    const during = lifecycleBacklog(COMMUNITY, 'revoke-during', Math.max(1, Math.round(count / 6)), Date.now() - 300_000)
    ledger.record(during.events, await postAll(server.url, secrets.hmacKey, during.events))
    await sleep(3_000)
    const whileRevoked = reader.counts()
    const requestsWhileRevoked = kit.requests.length - revokedFrom
    const rejected401 = kit.requests.slice(revokedFrom).filter((r) => r.status === 401).length
    log(
      `revoke: 3 s after ${during.events.length} more events: ${JSON.stringify(whileRevoked)}; ${requestsWhileRevoked} Kit requests since the revoke (${rejected401} × 401)`,
    )

    kit.restoreKey(KEY)
    await connect(client, KEY)
    const restoredAt = Date.now()
    log(`revoke: key restored and saved again (${await connectionStatus(client)}); waiting for the held deliveries`)
    const accepted = ledger.accepted()
    const counts = await withServerLog(
      server,
      waitTerminal(reader, accepted.length, { timeoutMs: 120_000, onProgress: (c) => log(`revoke: ${JSON.stringify(c)}`) }),
    )
    const resumedMs = Date.now() - restoredAt
    const stored = reader.storedIds()
    const integrity = reader.integrity()
    const lost = accepted.filter((e) => !stored.has(e.id)).length
    const members = [...before.members, ...during.members]
    const check = checkKit(
      kit.account(KEY),
      members.map((m) => ({ email: m.email, tags: LIFECYCLE_TAGS, fields: LIFECYCLE_FIELDS })),
    )
    const doubled = integrity.duplicateEvents + integrity.duplicateDeliveries + check.duplicated.length + check.duplicateTagNames.length
    const heldNeverSent = whileRevoked.succeeded === settled.succeeded
    log(
      `revoke: deliveries ${JSON.stringify(counts)} ${(resumedMs / 1000).toFixed(1)} s after the key was saved again; ${describeCheck(check)}; tag calls redone: ${repeatedTagCalls(kit.requests)}`,
    )
    const ok =
      lost === 0 &&
      doubled === 0 &&
      check.ok &&
      counts.failed === 0 &&
      heldNeverSent &&
      ledger.refused().length + ledger.unanswered().length === 0
    return finish({
      name: 'revoke',
      figures: {
        accepted: accepted.length,
        accepted_while_revoked: during.events.length,
        held_at_revoke: settled.held,
        kit_requests_while_revoked: requestsWhileRevoked,
        kit_401s: rejected401,
        deliveries: counts,
        seconds_to_drain_after_resave: Math.round(resumedMs / 100) / 10,
        lost,
        doubled,
        members_right_in_kit: `${check.correct}/${check.members}`,
      },
      goal: 'held while revoked; everything delivered once after the key is saved again',
      status: ok ? 'pass' : 'fail',
      verdict: `key revoked mid-backlog: connection invalid, ${settled.held} deliveries held (${requestsWhileRevoked} Kit requests, ${rejected401} × 401, after the revoke; ${during.events.length} events accepted meanwhile); after re-saving the key ${counts.succeeded}/${accepted.length} delivered, ${counts.failed} failed; ${check.correct}/${check.members} members exactly right in Kit; lost ${lost}, doubled ${doubled}`,
    })
  } finally {
    reader.close()
    await server.kill('SIGTERM')
    await kit.close()
  }
}

runIfMain(import.meta.url, async () => [await revokeDrill()], RESULTS)
