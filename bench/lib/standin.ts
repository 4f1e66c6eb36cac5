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
