/**
 * Cluster drill: garbage on both intakes. DRILL_CLUSTER_GARBAGE (default 10,000) bad requests over
 * HTTP, spread over the three instances and shuffled with 500 valid events and 200 replays, and as
 * many bad messages on the bus (the same kinds, without the content-type ones: a bus message has
 * none) with 200 valid events and 50 replays among them. Only valid events may be stored, no HTTP
 * answer may be a 2xx for garbage or a 5xx at all, all three must answer /healthz throughout, and
 * every poison message must be terminated (nothing left pending at the consumer) and counted as
 * refused in kit_bus_messages_total.
 */
import { performance } from 'node:perf_hooks'
import { busHeaders, consumerState, publishRaw, type RawMessage } from '../../bench/lib/bus.ts'
import { envInt, sleep } from '../../bench/lib/env.ts'
import { lifecycleBacklog, type MemberEvent } from '../../bench/lib/events.ts'
import { scrapeCounters } from '../../bench/lib/metrics.ts'
import { log, type Outcome } from '../../bench/lib/report.ts'
import { waitAllTerminal } from '../../bench/lib/store.ts'
import { finish } from '../common.ts'
import { fire, garbageShots, pick, shuffle, validShot, type Shot } from '../garbage.ts'
import { INSTANCES, startStack, withClusterLogs } from './stack.ts'

const COMMUNITY = 'c_cluster_garbage'
const HTTP_REPLAYS = 200
const BUS_REPLAYS = 50
const CONCURRENCY = 24
const REFUSED = ['invalid_signature', 'invalid_event', 'payload_too_large']

/** A shot as a bus message: its body and its three signature headers. */
function asMessage(shot: Shot): RawMessage {
  const headers = Object.fromEntries(Object.entries(shot.headers).filter(([name]) => name.startsWith('webhook-')))
  return { subject: `${COMMUNITY}.garbage`, body: typeof shot.body === 'string' ? shot.body : '', headers }
}

export async function clusterGarbageDrill(): Promise<Outcome> {
  const total = envInt('DRILL_CLUSTER_GARBAGE', 10_000)
  const stack = await startStack({ label: 'garbage', rate: { limit: 120, windowMs: 60_000 }, bus: true, noKit: true })
  const bus = stack.bus
  if (!bus) throw new Error('the garbage drill needs the bus')
  try {
    const { hmacKey } = stack.secrets
    const httpValid = lifecycleBacklog(COMMUNITY, 'cgarbage-http', 125).events
    const busValid = lifecycleBacklog(COMMUNITY, 'cgarbage-bus', 50).events
    const validIds = new Set([...httpValid, ...busValid].map((e) => e.id))
    const template = httpValid[0] as MemberEvent

    const httpShots = garbageShots(hmacKey, total, template)
    const httpGarbage = httpShots.length
    for (const e of httpValid) httpShots.push(validShot(hmacKey, e, 'valid'))
    for (let i = 0; i < HTTP_REPLAYS; i++) httpShots.push(validShot(hmacKey, pick(httpValid), 'valid replay'))
    shuffle(httpShots)

    const busShots = garbageShots(hmacKey, total, template, (kind) => !kind.startsWith('wrong content-type'))
    const busGarbage = busShots.length
    const busMessages = shuffle([
      ...busShots.map(asMessage),
      ...busValid.map((e): RawMessage => {
        const body = JSON.stringify(e)
        return { subject: `${COMMUNITY}.${e.type}`, body, headers: busHeaders(hmacKey, e.id, body), msgId: e.id }
      }),
      // Replays without a message id, so JetStream passes them on and the instances must recognise them.
      ...Array.from({ length: BUS_REPLAYS }, (): RawMessage => {
        const e = pick(busValid)
        const body = JSON.stringify(e)
        return { subject: `${COMMUNITY}.${e.type}`, body, headers: busHeaders(hmacKey, e.id, body) }
      }),
    ])
    log(
      `garbage: HTTP ${httpGarbage} bad + ${httpValid.length} valid + ${HTTP_REPLAYS} replays over ${INSTANCES} instances; bus ${busGarbage} bad + ${busValid.length} valid + ${BUS_REPLAYS} replays`,
    )

    const urls = stack.cluster.urls()
    const answers = new Map<string, Map<number | string, number>>()
    let probes = 0
    let probeFailures = 0
    let flooding = true
    const health = (async () => {
      while (flooding) {
        const results = await Promise.all(
          urls.map((u) =>
            fetch(`${u}/healthz`).then(
              (r) => r.ok,
              () => false,
            ),
          ),
        )
        probes += results.length
        probeFailures += results.filter((ok) => !ok).length
        await sleep(200)
      }
    })()
    const started = performance.now()
    const publishing = publishRaw(bus, busMessages)
    let next = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        while (next < httpShots.length) {
          const index = next++
          const shot = httpShots[index] as Shot
          const answer = await fire(urls[(index + worker) % urls.length] as string, shot)
          const byAnswer = answers.get(shot.kind) ?? new Map<number | string, number>()
          byAnswer.set(answer, (byAnswer.get(answer) ?? 0) + 1)
          answers.set(shot.kind, byAnswer)
        }
      }),
    )
    const published = (await publishing).filter(Boolean).length
    const httpSeconds = (performance.now() - started) / 1000
    // The bus drains on its own: wait until the consumer holds nothing, probing health meanwhile.
    const deadline = Date.now() + 120_000
    let state = await consumerState(bus)
    while (!state || state.pending + state.ackPending > 0) {
      if (Date.now() > deadline) throw new Error(`the bus consumer still holds messages after 120 s: ${JSON.stringify(state)}`)
      await sleep(250)
      state = await consumerState(bus)
    }
    const seconds = (performance.now() - started) / 1000
    flooding = false
    await health

    const table: Record<string, Record<string, number>> = {}
    for (const [kind, byAnswer] of answers) table[kind] = Object.fromEntries([...byAnswer].map(([a, n]) => [String(a), n]))
    for (const [kind, row] of Object.entries(table)) log(`garbage:   ${kind.padEnd(45)} ${JSON.stringify(row)}`)
    const count = (predicate: (kind: string, answer: number | string) => boolean) =>
      [...answers].reduce((n, [kind, byAnswer]) => n + [...byAnswer].filter(([a]) => predicate(kind, a)).reduce((m, [, c]) => m + c, 0), 0)
    const isValid = (kind: string) => kind.startsWith('valid')
    const garbage2xx = count((kind, a) => !isValid(kind) && typeof a === 'number' && a < 300)
    const any5xx = count((_k, a) => typeof a === 'number' && a >= 500)
    const noAnswer = count((kind, a) => typeof a === 'string' && !kind.startsWith('oversize'))
    const httpAccepted = count((kind, a) => isValid(kind) && a === 202)
    const httpDuplicates = count((kind, a) => isValid(kind) && a === 200)

    const outcomes = await scrapeCounters(urls, 'kit_bus_messages_total', 'outcome')
    const busRefused = REFUSED.reduce((n, o) => n + (outcomes[o] ?? 0), 0)
    log(
      `garbage: bus outcomes over the ${INSTANCES} instances ${JSON.stringify(outcomes)}; consumer ${JSON.stringify(state)}; ${published}/${busMessages.length} messages published`,
    )

    await withClusterLogs(stack.cluster, waitAllTerminal(stack.store, validIds.size, { timeoutMs: 60_000 }))
    const stored = await stack.store.storedIds()
    const integrity = await stack.store.integrity()
    const deliveries = await stack.store.total()
    const garbageStored = [...stored].filter((id) => !validIds.has(id)).length
    const validMissing = [...validIds].filter((id) => !stored.has(id)).length
    const healthzAfter = await Promise.all(
      urls.map((u) =>
        fetch(`${u}/healthz`).then(
          (r) => r.status,
          () => 0,
        ),
      ),
    )
    log(
      `garbage: HTTP flood ${httpSeconds.toFixed(1)} s, bus drained after ${seconds.toFixed(1)} s; stored ${stored.size} events (${garbageStored} garbage, ${validMissing} valid missing), ${deliveries} deliveries; ` +
        `/healthz ${probes - probeFailures}/${probes} probes, now ${healthzAfter.join(', ')}`,
    )
    const ok =
      garbage2xx === 0 &&
      any5xx === 0 &&
      noAnswer === 0 &&
      garbageStored === 0 &&
      validMissing === 0 &&
      stored.size === validIds.size &&
      deliveries === validIds.size &&
      integrity.duplicateEvents === 0 &&
      httpAccepted === httpValid.length &&
      httpDuplicates === HTTP_REPLAYS &&
      published === busMessages.length &&
      busRefused === busGarbage &&
      (outcomes.accepted ?? 0) === busValid.length &&
      (outcomes.duplicate ?? 0) === BUS_REPLAYS &&
      (outcomes.storage_error ?? 0) === 0 &&
      probeFailures === 0 &&
      healthzAfter.every((s) => s === 200)
    return finish({
      name: 'cluster-garbage',
      figures: {
        instances: INSTANCES,
        http_bad_requests: httpGarbage,
        bus_bad_messages: busGarbage,
        http_answers: table,
        garbage_answered_2xx: garbage2xx,
        answered_5xx: any5xx,
        not_answered: noAnswer,
        bus_outcomes: outcomes,
        bus_refused: busRefused,
        consumer_after: state,
        stored_events: stored.size,
        garbage_stored: garbageStored,
        valid_missing: validMissing,
        health_probes: `${probes - probeFailures}/${probes}`,
        seconds: Math.round(seconds * 10) / 10,
      },
      goal: 'only valid events stored; every poison message terminated and counted; all instances healthy',
      status: ok ? 'pass' : 'fail',
      verdict:
        `HTTP: ${httpGarbage} bad requests refused (${garbage2xx} × 2xx, ${any5xx} × 5xx, ${noAnswer} unanswered), ${httpAccepted} valid accepted + ${httpDuplicates} replays answered duplicate; ` +
        `bus: ${busRefused}/${busGarbage} poison messages refused and terminated, ${outcomes.accepted ?? 0} valid accepted, ${outcomes.duplicate ?? 0} replays recognised, ${state.pending + state.ackPending} left at the consumer; ` +
        `stored ${stored.size} = ${validIds.size} valid, ${garbageStored} garbage; /healthz ${probes - probeFailures}/${probes} on ${INSTANCES} instances`,
    })
  } finally {
    await stack.close()
  }
}
