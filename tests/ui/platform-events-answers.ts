/** The faked API's answers for the Kit → App Station section (`vi.mock('../../ui/src/api/index.ts')` in the test file). */
import { vi } from 'vitest'
import type { PlatformEvent, PlatformEventSummary } from '#shared/platform-events.ts'
import { api } from '../../ui/src/api/index.ts'
import { aPlatformEventSummary } from './factories.ts'

/** The summary (configured unless told) and one page of failed events. */
export function answerPlatformEvents(
  summary: Partial<PlatformEventSummary> = {},
  failed: PlatformEvent[] = [],
  nextCursor: string | null = null,
): void {
  vi.mocked(api.getPlatformEventSummary).mockResolvedValue(aPlatformEventSummary(summary))
  vi.mocked(api.listPlatformEvents).mockResolvedValue({ items: failed, next_cursor: nextCursor })
}
