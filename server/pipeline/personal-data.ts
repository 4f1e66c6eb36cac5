/**
 * A deleted member's personal data, purged once their last delivery settled: the subscriber the
 * plugin last wrote to Kit (email, first name, field values), what it last saw of them in Kit, and
 * the personal data of their finished deliveries and stored events (see core/erasure.ts for what
 * stays). The consumer purges as soon as a member's `user.deleted` settles; the retention pass
 * looks for what is left (a crash between settling and purging, an older event arriving late, a
 * deletion that could still be sent again) and purges it then, so nothing is left for good.
 *
 * The stored events and deliveries are purged last: as long as one still holds personal data,
 * retention finds the member again and purges everything once more.
 */
import type { DeletedMemberData } from '../core/ports.ts'
import type { DeliveryQueue } from '../core/queue.ts'
import type { KitStateRepository, SubscriberRepository } from '../core/storage.ts'

export interface PersonalDataDeps {
  queue: Pick<DeliveryQueue, 'deletion' | 'deletedWithPersonalData' | 'scrubMember'>
  subscribers: Pick<SubscriberRepository, 'forgetMember'>
  kitStates: Pick<KitStateRepository, 'forgetMember'>
}

export class PersonalDataPurge implements DeletedMemberData {
  constructor(private readonly deps: PersonalDataDeps) {}

  /**
   * Right after a delivery settled: purges the member when they count as deleted. A deletion that
   * failed, or was recorded while no Kit account was connected, may still be sent again: kept
   * until retention (see sweep).
   */
  async forget(communityId: string, memberId: string): Promise<boolean> {
    const deletedAt = await this.deps.queue.deletion(communityId, memberId, 0)
    if (deletedAt === null) return false
    await this.purge(communityId, memberId, deletedAt)
    return true
  }

  /**
   * Retention's pass: every deleted member whose personal data is still stored is purged, a
   * deletion that may be sent again once last updated before `replayableBefore`. Returns the members purged.
   */
  async sweep(replayableBefore: number, batchSize = 100): Promise<number> {
    let purged = 0
    for (;;) {
      const members = await this.deps.queue.deletedWithPersonalData(replayableBefore, batchSize)
      let scrubbed = 0
      for (const m of members) scrubbed += await this.purge(m.communityId, m.memberId, m.deletedAt)
      purged += members.length
      // A batch that changed nothing (its deliveries were put back in the queue meanwhile) ends the pass.
      if (members.length < batchSize || scrubbed === 0) return purged
    }
  }

  /** Returns the deliveries scrubbed. */
  private async purge(communityId: string, memberId: string, deletedAt: number): Promise<number> {
    await this.deps.subscribers.forgetMember(communityId, memberId)
    await this.deps.kitStates.forgetMember(communityId, memberId)
    return this.deps.queue.scrubMember(communityId, memberId, deletedAt)
  }
}
