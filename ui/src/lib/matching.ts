/**
 * How the pickers order what matches a typed query: an exact name first, then names starting with
 * it, then names with a word starting with it, then names holding it anywhere. Within a rank the
 * shorter name (the closer match: "VIP" before "VIP Gold" for "vi") comes first, then Kit's own
 * order. Case and surrounding spaces never matter.
 */

export const MatchRank = { Exact: 0, Prefix: 1, WordPrefix: 2, Substring: 3 } as const
export type MatchRank = (typeof MatchRank)[keyof typeof MatchRank]

export const normalName = (name: string) => name.trim().toLowerCase()

/** How well `name` matches `query` (both as typed), or null when it does not match at all. */
export function matchRank(name: string, query: string): MatchRank | null {
  const n = normalName(name)
  const q = normalName(query)
  if (n === q) return MatchRank.Exact
  if (n.startsWith(q)) return MatchRank.Prefix
  const at = n.indexOf(q)
  if (at < 0) return null
  for (let i = at; i >= 0; i = n.indexOf(q, i + 1)) {
    if (!/[\p{L}\p{N}]/u.test(n[i - 1]!)) return MatchRank.WordPrefix
  }
  return MatchRank.Substring
}

/** The items whose name matches `query`, best first. */
export function rankMatches<T extends { name: string }>(items: readonly T[], query: string): T[] {
  return items
    .map((item, index) => ({ item, index, rank: matchRank(item.name, query), length: item.name.trim().length }))
    .filter((entry): entry is { item: T; index: number; rank: MatchRank; length: number } => entry.rank !== null)
    .sort((a, b) => a.rank - b.rank || a.length - b.length || a.index - b.index)
    .map((entry) => entry.item)
}
