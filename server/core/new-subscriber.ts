/**
 * What a subscriber created by this very delivery does not need, decided once for the processor
 * and the dry-run planner: a new subscriber has no tags yet, so removing any would be a request
 * that changes nothing in Kit.
 */
export function tagRemovalsFor<T>(removals: readonly T[], newSubscriber: boolean): readonly T[] {
  return newSubscriber ? [] : removals
}

/** In a delivery's progress (see progress.ts): Kit created the subscriber with this id during the delivery. */
export const createdMark = (subscriberId: number): string => `created:${subscriberId}`
