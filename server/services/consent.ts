/**
 * The community's consent setting, the one front door to it: who may become a Kit subscriber.
 * The pipeline asks on every delivery (ConsentSource) and reads the stored row each time: one
 * lookup by primary key, so a change saved on any instance sharing the database holds at once.
 */
import { DEFAULT_CONSENT_MODE, isConsentMode, type ConsentMode, type ConsentSetting } from '#shared/api.ts'
import type { ConsentSource } from '../core/ports.ts'
import type { CommunitySettingsRepository } from '../core/storage.ts'
import { iso } from '../core/time.ts'
import { AppError } from '../lib/errors.ts'

/** A stored mode this version does not know (a newer version wrote it) is read as the stricter one. */
const STRICTEST: ConsentMode = 'marketing_consent'

export class ConsentService implements ConsentSource {
  private readonly now: () => number

  constructor(
    private readonly settings: CommunitySettingsRepository,
    now?: () => number,
  ) {
    this.now = now ?? Date.now
  }

  async get(communityId: string): Promise<ConsentSetting> {
    const row = await this.settings.get(communityId)
    if (!row) return { mode: DEFAULT_CONSENT_MODE, updated_at: null }
    return { mode: isConsentMode(row.consentMode) ? row.consentMode : STRICTEST, updated_at: iso(row.updatedAt) }
  }

  async set(communityId: string, mode: ConsentMode): Promise<ConsentSetting> {
    if (!isConsentMode(mode)) throw new AppError(400, 'invalid_request', 'mode must be one of: all_members, marketing_consent')
    await this.settings.saveConsentMode(communityId, mode, this.now())
    return this.get(communityId)
  }

  async consentMode(communityId: string): Promise<ConsentMode> {
    return (await this.get(communityId)).mode
  }
}
