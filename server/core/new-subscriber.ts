/** In a delivery's progress (see progress.ts): Kit created the subscriber with this id during the delivery. */
export const createdMark = (subscriberId: number): string => `created:${subscriberId}`
