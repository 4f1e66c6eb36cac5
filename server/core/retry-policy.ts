/**
 * When a delivery is tried again, as pure functions of the policy, the attempt and the clock, so
 * every rule can be checked without Kit or a queue.
 */

export interface RetryPolicy {
  /** First backoff for an unavailable Kit, doubled each attempt, capped, with full jitter. */
  baseMs: number
  maxMs: number
  /** Give up (failed) once an event has been retried this long. */
  giveUpAfterMs: number
  /** Wait after a 429: Kit's window. */
  rateLimitWaitMs: number
  /**
   * Kit's subscriber lookup by email lags its writes (about 30 s, up to 5 minutes): a removal or
   * unsubscribe that finds nobody looks again until this long after the event was received.
   */
  listLagWindowMs: number
  /** Wait before the second lookup: from this to twice this; doubled for each lookup after. */
  listLagRetryMs: number
}

export function defaultRetryPolicy(rateLimitWaitMs: number): RetryPolicy {
  return {
    baseMs: 5_000,
    maxMs: 30 * 60_000,
    giveUpAfterMs: 24 * 60 * 60_000,
    rateLimitWaitMs,
    listLagWindowMs: 5 * 60_000,
    listLagRetryMs: 30_000,
  }
}

/**
 * The wait before attempt `attempts + 1` after Kit was unavailable: `baseMs` doubled per attempt,
 * capped at `maxMs`, then jittered to between half of that and all of it. `random` is in [0, 1).
 */
export function backoffDelay(policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, attempts: number, random: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempts, 0), 20))
  return Math.round(ceiling / 2 + (random * ceiling) / 2)
}

/** True once a delivery received at `receivedAt` has been retried for longer than the policy allows. */
export function retriesExpired(policy: Pick<RetryPolicy, 'giveUpAfterMs'>, receivedAt: number, now: number): boolean {
  return now - receivedAt > policy.giveUpAfterMs
}

/**
 * When to look a subscriber up by email again after Kit's list found nobody for the `attempt`-th
 * time (0 for the first lookup): `listLagRetryMs` to twice that from now, doubled per lookup
 * (30–60 s, then 60–120 s, …), never later than the end of the window (one last look then), or
 * null once the window after the event's receipt has passed (nobody there: give up). Most
 * subscribers show up at the second lookup; the doubling keeps a member who is in Kit under no
 * address at about five lookups, so removals for people Kit never had cost little of the budget.
 */
export function nextListLookup(
  policy: Pick<RetryPolicy, 'listLagWindowMs' | 'listLagRetryMs'>,
  receivedAt: number,
  now: number,
  attempt: number,
  random: number,
): number | null {
  const deadline = receivedAt + policy.listLagWindowMs
  if (now >= deadline) return null
  const delay = policy.listLagRetryMs * 2 ** Math.min(Math.max(attempt, 0), 20) * (1 + random)
  return Math.min(Math.round(now + delay), deadline)
}
