import { describe, expect, it } from 'vitest'
import { loadConfig } from '../server/config.ts'
import { goodSecrets, problemsOf } from './helpers/config.ts'

describe('initial sync limits', () => {
  it('defaults to 64 MiB and 100,000 members a sync', () => {
    const { config } = loadConfig(goodSecrets())
    expect([config.syncMaxBytes, config.syncMaxRows]).toEqual([64 * 1024 * 1024, 100_000])
  })

  it('reads SYNC_MAX_BYTES and SYNC_MAX_ROWS and refuses values that are not whole numbers in range', () => {
    const { config } = loadConfig({ ...goodSecrets(), SYNC_MAX_BYTES: '1048576', SYNC_MAX_ROWS: '500' })
    expect([config.syncMaxBytes, config.syncMaxRows]).toEqual([1_048_576, 500])
    expect(problemsOf({ ...goodSecrets(), SYNC_MAX_BYTES: '10', SYNC_MAX_ROWS: 'lots' })).toEqual([
      'SYNC_MAX_BYTES must be an integer ≥ 1024',
      'SYNC_MAX_ROWS must be an integer ≥ 1',
    ])
    expect(problemsOf({ ...goodSecrets(), SYNC_MAX_ROWS: '2000000' })).toEqual([
      'SYNC_MAX_ROWS must be at most 1000000 (split larger member lists into several syncs)',
    ])
  })
})
