/**
 * The order communities take turns in at the queue, as a pure function of the claimable
 * deliveries and the communities' places: both storage dialects claim through it.
 */

/** A claimable delivery, as far as taking turns is concerned. */
export interface ClaimCandidate {
  seq: number
  communityId: string
  memberId: string
}

/**
 * Each community's place in line for a claim: the higher of `floor` and its entry in `places`
 * (lower first; one not listed stands at the floor), and among equals the lower entry first.
 */
export interface ClaimTurnsOrder {
  floor: number
  places: ReadonlyMap<string, number>
}

/**
 * Which of the claimable deliveries a claim takes: communities take turns. `candidates` holds, for
 * each community, its claimable deliveries in the queue's order (live events first, then by due
 * time; communities may be interleaved). Communities go in the order of their places (see
 * FairShare), the one with the oldest first delivery first among equals, and each gets one
 * delivery per round until `limit`; at most one per member. Without `order`, every community
 * stands at the same place.
 */
export function takeTurns<T extends ClaimCandidate>(candidates: readonly T[], limit: number, order?: ClaimTurnsOrder): T[] {
  const lines = new Map<string, T[]>()
  for (const candidate of candidates) {
    const line = lines.get(candidate.communityId)
    if (line) line.push(candidate)
    else lines.set(candidate.communityId, [candidate])
  }
  const entryOf = (line: readonly T[]) => (order ? (order.places.get(line[0]?.communityId ?? '') ?? order.floor) : 0)
  const placeOf = (line: readonly T[]) => (order ? Math.max(order.floor, entryOf(line)) : 0)
  const queue = [...lines.values()].sort(
    (a, b) => placeOf(a) - placeOf(b) || entryOf(a) - entryOf(b) || (a[0]?.seq ?? 0) - (b[0]?.seq ?? 0),
  )
  const picked: T[] = []
  const members = new Set<string>()
  for (let round = 0; picked.length < limit; round++) {
    let any = false
    for (const line of queue) {
      const candidate = line[round]
      if (!candidate) continue
      any = true
      const member = `${candidate.communityId}\u0000${candidate.memberId}`
      if (members.has(member)) continue
      members.add(member)
      picked.push(candidate)
      if (picked.length === limit) break
    }
    if (!any) break
  }
  return picked
}
