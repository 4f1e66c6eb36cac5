/** Identifiers the service mints itself. */
import { randomUUID } from 'node:crypto'

/** A delivery's public id: `dlv_` and 32 hex digits. */
export const newDeliveryId = () => `dlv_${randomUUID().replace(/-/g, '')}`
