/**
 * Holding the tag a plain tag name stands for in the mapping document, on a real SQLite
 * repository: every tag of that name gets the id, nothing else changes, and a save made meanwhile
 * (another tab, another instance) is read again and kept, never undone.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Mappings } from '#shared/api.ts'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import { openDatabase, type OpenedDatabase } from '../../server/db/index.ts'
import { MappingService } from '../../server/services/mappings.ts'
import { sqliteRunner } from '../../server/storage/common/sql.ts'
import { MappingStore } from '../../server/storage/common/tables.ts'
import { MappingHistoryStore } from '../../server/storage/common/mapping-history.ts'
import type { MappingRecord, MappingRepository } from '../../server/core/storage.ts'

const C = 'c_hold'
let opened: OpenedDatabase
let repo: MappingStore
let history: MappingHistoryStore

beforeEach(() => {
  opened = openDatabase(':memory:')
  repo = new MappingStore(sqliteRunner(opened.sqlite))
  history = new MappingHistoryStore(sqliteRunner(opened.sqlite))
})
afterEach(() => opened.sqlite.close())

const record = (doc: Mappings): MappingRecord => ({ communityId: C, document: JSON.stringify(doc), updatedAt: new Date().toISOString() })

/** The repository, with `meanwhile` run once just before the first write (a save by someone else). */
function racing(meanwhile: () => Promise<void>): MappingRepository {
  let done = false
  const first = async () => {
    if (done) return
    done = true
    await meanwhile()
  }
  return {
    get: (id) => repo.get(id),
    save: (r) => repo.save(r),
    replace: async (r, expected) => (await first(), repo.replace(r, expected)),
    create: async (r) => (await first(), repo.create(r)),
  }
}

describe('holding a tag id in the mapping document', () => {
  it('saves the defaults with the id on every tag of that name when the community never saved mappings', async () => {
    await new MappingService(repo, history).holdTagId(C, 'active member', 1003)
    const doc = await new MappingService(repo, history).get(C)
    expect(doc.events['subscription.started']!.add_tags).toEqual([{ id: 1003, name: 'Active Member' }])
    expect(doc.events['subscription.canceled']!.remove_tags).toEqual([{ id: 1003, name: 'Active Member' }])
    expect(doc.events['subscription.started']!.remove_tags).toEqual([{ name: 'Cancelled' }])
  })

  it('leaves a tag picked with another id alone, and replaces only the id Kit no longer has', async () => {
    const doc = defaultMappings()
    doc.events['user.updated'] = { ...emptyEventMapping(), add_tags: [{ id: 55, name: 'Active Member' }] }
    doc.events['subscription.started']!.add_tags = [{ id: 7, name: 'Active Member' }]
    await repo.save(record(doc))
    const service = new MappingService(repo, history)
    await service.holdTagId(C, 'Active Member', 1003)
    let saved = await service.get(C)
    expect(saved.events['user.updated']!.add_tags).toEqual([{ id: 55, name: 'Active Member' }])
    expect(saved.events['subscription.canceled']!.remove_tags).toEqual([{ id: 1003, name: 'Active Member' }])
    await service.holdTagId(C, 'Active Member', 1010, 7)
    saved = await service.get(C)
    expect(saved.events['subscription.started']!.add_tags).toEqual([{ id: 1010, name: 'Active Member' }])
    expect(saved.events['user.updated']!.add_tags).toEqual([{ id: 55, name: 'Active Member' }])
  })

  it("keeps an owner's save made while the id was being held, and holds the id in it", async () => {
    await repo.save(record(defaultMappings()))
    const owners = defaultMappings()
    owners.events['user.updated'] = { ...emptyEventMapping(), add_tags: [{ name: 'VIP' }, { name: 'active MEMBER' }] }
    await new MappingService(
      racing(() => repo.save(record(owners))),
      history,
    ).holdTagId(C, 'Active Member', 1003)
    const saved = await new MappingService(repo, history).get(C)
    expect(saved.events['user.updated']!.add_tags).toEqual([{ name: 'VIP' }, { id: 1003, name: 'active MEMBER' }])
    expect(saved.events['subscription.started']!.add_tags).toEqual([{ id: 1003, name: 'Active Member' }])
  })

  it("keeps an owner's first save made while the defaults were being stored with the id", async () => {
    const owners = defaultMappings()
    owners.events['subscription.started']!.add_to_sequences = [{ id: 31, name: 'Welcome series' }]
    await new MappingService(
      racing(() => repo.save(record(owners))),
      history,
    ).holdTagId(C, 'Active Member', 1003)
    const saved = await new MappingService(repo, history).get(C)
    expect(saved.events['subscription.started']).toMatchObject({
      add_tags: [{ id: 1003, name: 'Active Member' }],
      add_to_sequences: [{ id: 31, name: 'Welcome series' }],
    })
  })
})
