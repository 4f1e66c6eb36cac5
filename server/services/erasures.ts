/**
 * "Delete by hand in Kit": the members an erasing `user.deleted` erased from Kit as far as its API
 * allows, each with the link to their page in Kit's app, until the owner says they deleted them.
 */
import { ERASURES_MAX, type ErasureList as ErasureListDto } from '#shared/api.ts'
import { kitSubscriberUrl } from '../core/erasure.ts'
import type { ErasedMember, ErasureList } from '../core/ports.ts'
import type { ErasureRepository } from '../core/storage.ts'
import { iso } from '../core/time.ts'
import { AppError } from '../lib/errors.ts'

export class ErasureService implements ErasureList {
  constructor(
    private readonly repo: ErasureRepository,
    private readonly now: () => number = Date.now,
  ) {}

  async erased(member: ErasedMember): Promise<void> {
    await this.repo.record(member.communityId, member.memberId, member.subscriberId, this.now())
  }

  async pending(communityId: string): Promise<ErasureListDto> {
    const rows = await this.repo.pending(communityId, ERASURES_MAX)
    return {
      items: rows.map((r) => ({
        member_id: r.memberId,
        subscriber_id: r.subscriberId,
        kit_url: kitSubscriberUrl(r.subscriberId),
        erased_at: iso(r.erasedAt),
      })),
    }
  }

  async done(communityId: string, memberId: string): Promise<void> {
    if ((await this.repo.done(communityId, memberId, this.now())) === 0) {
      throw new AppError(404, 'not_found', 'No member of this community with that id is waiting to be deleted in Kit')
    }
  }
}
