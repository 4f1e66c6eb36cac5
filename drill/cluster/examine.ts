/** The end of every cluster drill: wait for the deliveries, then count what was lost or doubled. */
import type { StatusCounts } from '../../bench/lib/deliveries.ts'
import { LIFECYCLE_FIELDS, LIFECYCLE_TAGS, type Member } from '../../bench/lib/events.ts'
import { log } from '../../bench/lib/report.ts'
import { waitAllTerminal } from '../../bench/lib/store.ts'
import { checkKit, describeCheck, type KitCheck } from '../../bench/lib/verify.ts'
import { repeatedTagCalls, type Ledger } from '../common.ts'
import { withClusterLogs, type Stack } from './stack.ts'

export interface Examined {
  counts: StatusCounts
  /** Accepted events with no stored row. */
  lost: number
  /** Events or deliveries stored twice, duplicate subscribers and duplicate tag names. */
  doubled: number
  /** Delivery rows, to compare with the accepted events (one each). */
  rows: number
  check: KitCheck
  tagCallsRedone: number
  line: string
}

export async function examine(stack: Stack, ledger: Ledger, members: Member[], name: string, timeoutMs: number): Promise<Examined> {
  const accepted = ledger.accepted()
  const counts = await withClusterLogs(
    stack.cluster,
    waitAllTerminal(stack.store, accepted.length, { timeoutMs, onProgress: (c) => log(`${name}: draining ${JSON.stringify(c)}`) }),
  )
  const stored = await stack.store.storedIds()
  const integrity = await stack.store.integrity()
  const rows = await stack.store.total()
  const lost = accepted.filter((e) => !stored.has(e.id)).length
  const check = checkKit(
    stack.kit.account(stack.key),
    members.map((m) => ({ email: m.email, tags: LIFECYCLE_TAGS, fields: LIFECYCLE_FIELDS })),
  )
  const doubled = integrity.duplicateEvents + integrity.duplicateDeliveries + check.duplicated.length + check.duplicateTagNames.length
  const tagCallsRedone = repeatedTagCalls(stack.kit.requests)
  const line =
    `deliveries ${JSON.stringify(counts)}; ${rows} delivery rows for ${accepted.length} accepted events, ${integrity.eventsWithoutDelivery} events without one; ` +
    `${describeCheck(check)}; Kit tag calls redone (harmless): ${tagCallsRedone}`
  log(`${name}: ${line}`)
  if (!check.ok) await explainWrong(stack, members, check, name)
  return { counts, lost, doubled, rows, check, tagCallsRedone, line }
}

/** For the first few members Kit has wrong: each of their deliveries, in the order they were stored. */
async function explainWrong(stack: Stack, members: Member[], check: KitCheck, name: string): Promise<void> {
  const wrong = [...check.missing, ...check.duplicated, ...check.wrongTags, ...check.wrongFields].map(
    (entry) => entry.split(':')[0] ?? entry,
  )
  const byEmail = new Map(members.map((m) => [m.email.toLowerCase(), m]))
  for (const email of [...new Set(wrong)].slice(0, 3)) {
    const m = byEmail.get(email)
    if (!m) continue
    const account = stack.kit.account(stack.key)
    const tagName = new Map(account.tags.map((t) => [t.id, t.name]))
    const kit = account.subscribers.find((s) => s.email_address.toLowerCase() === email)
    const state = kit ? JSON.stringify({ tags: [...kit.tags].map((id) => tagName.get(id) ?? id), fields: kit.fields }) : 'none'
    log(`${name}: ${email} (${m.id}) in Kit: ${state}; its deliveries as stored:`)
    for (const d of await stack.store.memberHistory(m.id)) {
      log(
        `${name}:   +${d.storedAfterMs} ms  ${d.eventType.padEnd(22)} t0+${d.eventTime}  ${d.status} after ${d.attempts} attempt(s)${d.lastError ? ` — ${d.lastError}` : ''}`,
      )
    }
  }
}

/** Clean: nothing lost or doubled, nothing failed, one delivery per accepted event, Kit exactly right. */
export const clean = (e: Examined, accepted: number) =>
  e.lost === 0 && e.doubled === 0 && e.counts.failed === 0 && e.rows === accepted && e.check.ok
