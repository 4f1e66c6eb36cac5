/** Reading the Kit stand-in's request log. */
import type { StandinRequest } from '../../tests/kit-standin/server.ts'

/** "POST /v4/tags/:id/subscribers/:id" — numeric segments folded, for a breakdown by kind. */
export const requestKind = (r: StandinRequest) => `${r.method} ${r.path.replace(/\/\d+/g, '/:id')}`

export function breakdown(requests: StandinRequest[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const r of requests) counts[requestKind(r)] = (counts[requestKind(r)] ?? 0) + 1
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]))
}

/** Requests after the first `from`, without the connection check (GET /v4/account). */
export const pipelineRequests = (requests: StandinRequest[], from = 0) =>
  requests.slice(from).filter((r) => !(r.method === 'GET' && r.path === '/v4/account'))

/** Requests the stand-in let through to its API: not refused for the budget (429) or the key (401), and answered. */
const admitted = (r: StandinRequest) => r.status !== 0 && r.status !== 429 && r.status !== 401

/**
 * The most requests of one key the stand-in admitted within any rolling window of `windowMs`
 * (counted at receipt, as the stand-in and Kit count them).
 */
export function maxPerWindow(requests: StandinRequest[], windowMs: number, key?: string): number {
  const times = requests
    .filter((r) => admitted(r) && (key === undefined || r.key === key))
    .map((r) => r.at)
    .sort((a, b) => a - b)
  let most = 0
  let from = 0
  for (let to = 0; to < times.length; to++) {
    while ((times[to] as number) - (times[from] as number) >= windowMs) from += 1
    most = Math.max(most, to - from + 1)
  }
  return most
}

/**
 * How long past the window the budget's slots stayed unused, from the stand-in's side: with
 * `capacity` slots, the request `capacity` places after another could at best arrive a whole
 * window after it; the extra is time a slot sat idle (request latency, the ledger's round trips,
 * a consumer that woke late). Median and mean in ms over the admitted requests of one key.
 */
export function slotTurnaround(
  requests: StandinRequest[],
  capacity: number,
  windowMs: number,
  key?: string,
): { medianMs: number; meanMs: number } {
  const times = requests
    .filter((r) => admitted(r) && (key === undefined || r.key === key))
    .map((r) => r.at)
    .sort((a, b) => a - b)
  const extra: number[] = []
  for (let i = 0; i + capacity < times.length; i++) extra.push((times[i + capacity] as number) - (times[i] as number) - windowMs)
  if (extra.length === 0) return { medianMs: Number.NaN, meanMs: Number.NaN }
  extra.sort((a, b) => a - b)
  return { medianMs: extra[Math.floor(extra.length / 2)] as number, meanMs: extra.reduce((n, x) => n + x, 0) / extra.length }
}
