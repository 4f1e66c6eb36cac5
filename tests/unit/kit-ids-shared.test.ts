/**
 * Tag ids across instances: each instance caches Kit's tag list; a tag another instance created
 * after that list was read is found in the shared registry rather than taken as missing (a
 * removal that silently does nothing, or a second creation).
 */
import { describe, expect, it } from 'vitest'
import type { KitApi } from '../../server/kit/client.ts'
import { KitIdCache } from '../../server/pipeline/kit-ids.ts'
import type { KnownTagRepository } from '../../server/core/storage.ts'

/** One Kit account's tags, with a count of the requests each instance made. */
function kitAccount() {
  const tags: { id: number; name: string }[] = []
  const calls: string[] = []
  const api = (instance: string) =>
    ({
      credentialId: 'cred_1',
      listTags: async () => {
        calls.push(`${instance} list`)
        return tags.map((t) => ({ ...t }))
      },
      createTag: async (name: string) => {
        calls.push(`${instance} create ${name}`)
        const found = tags.find((t) => t.name.toLowerCase() === name.toLowerCase())
        if (found) return { tag: found, created: false }
        const tag = { id: 100 + tags.length, name }
        tags.push(tag)
        return { tag, created: true }
      },
    }) as unknown as KitApi
  return { tags, calls, api }
}

function registry(): KnownTagRepository & { rows: Map<string, { id: number; at: number }> } {
  const rows = new Map<string, { id: number; at: number }>()
  return {
    rows,
    async remember(credentialId, name, tagId, now) {
      rows.set(`${credentialId}/${name}`, { id: tagId, at: now })
    },
    async find(credentialId, name, since) {
      const row = rows.get(`${credentialId}/${name}`)
      return row && row.at >= since ? row.id : null
    },
  }
}

describe('tag ids shared between instances', () => {
  it('finds a tag another instance created after this one read the list, without asking Kit', async () => {
    const kit = kitAccount()
    const shared = registry()
    let clock = 1_000_000
    const a = new KitIdCache({ shared, now: () => clock })
    const b = new KitIdCache({ shared, now: () => clock })
    // A reads the (empty) list first: nothing to remove.
    expect(await a.existingTagId(kit.api('a'), 'Active Member')).toBeNull()
    clock += 60_000
    // B creates the tag for a member's earlier event.
    const id = await b.tagId(kit.api('b'), 'Active Member')
    // A, still on its old list, removes it for the member's next event: it knows the id.
    expect(await a.existingTagId(kit.api('a'), 'active member')).toBe(id)
    expect(await a.tagId(kit.api('a'), 'Active Member')).toBe(id)
    expect(kit.calls).toEqual(['a list', 'b list', 'b create Active Member'])
  })

  it("without a registry, an instance on its old list misses the other's tag (the case the registry exists for)", async () => {
    const kit = kitAccount()
    const a = new KitIdCache()
    const b = new KitIdCache()
    expect(await a.existingTagId(kit.api('a'), 'Cancelled')).toBeNull()
    await b.tagId(kit.api('b'), 'Cancelled')
    expect(await a.existingTagId(kit.api('a'), 'Cancelled')).toBeNull()
  })

  it('ignores what was learnt well before its own list was read: that list already says what Kit holds', async () => {
    const kit = kitAccount()
    const shared = registry()
    let clock = 1_000_000
    await shared.remember('cred_1', 'old tag', 7, clock)
    clock += 60_000
    const a = new KitIdCache({ shared, now: () => clock })
    // Kit's list (read after the entry) has no "old tag": it was deleted in Kit meanwhile.
    expect(await a.existingTagId(kit.api('a'), 'Old Tag')).toBeNull()
  })

  it('records a tag Kit already had when asked to create it, for the other instances', async () => {
    const kit = kitAccount()
    const shared = registry()
    const clock = 5_000
    const a = new KitIdCache({ shared, now: () => clock })
    await a.existingTagId(kit.api('a'), 'x')
    kit.tags.push({ id: 42, name: 'VIP' })
    expect(await a.tagId(kit.api('a'), 'VIP')).toBe(42)
    expect(shared.rows.get('cred_1/vip')).toEqual({ id: 42, at: clock })
  })
})
