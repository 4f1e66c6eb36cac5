/**
 * Tag and custom-field ids per Kit credential, learnt once and reused, so an event costs only the
 * calls that change something. Concurrent deliveries share one lookup or creation of the same
 * thing (single flight). A cached list is dropped whenever Kit shows it is out of date: an id it
 * no longer knows, a creation that found the thing already there (or was refused because it is
 * there), a field it did not know.
 */
import type { KitApi } from '../core/kit.ts'
import { isKitError } from '../kit/errors.ts'
import type { KnownTagRepository } from '../core/storage.ts'

interface TagList {
  /** Lower-cased name → id. */
  byName: Map<string, number>
  ids: Set<number>
  /** When the read of Kit's list started (epoch ms): tags learnt since then may be missing from it. */
  readAt: number
}

/** Tags another instance learnt this long before our read started are looked up too (clock drift between hosts). */
const CLOCK_MARGIN_MS = 5000

export interface KitIdCacheOptions {
  /** Several instances: the tag ids each learns, so that a stale list misses nothing another created. */
  shared?: KnownTagRepository | null
  now?: () => number
}

interface Loading<T> {
  promise: Promise<T>
  /** Set once the read has answered. */
  value: T | null
}

interface CredentialCache {
  tags: Loading<TagList> | null
  fields: Promise<Map<string, string>> | null
  /** Creations in flight, by tag name or field label (lower-cased). */
  creating: Map<string, Promise<unknown>>
}

export class KitIdCache {
  private readonly byCredential = new Map<string, CredentialCache>()
  private readonly shared: KnownTagRepository | null
  private readonly now: () => number

  constructor(options: KitIdCacheOptions = {}) {
    this.shared = options.shared ?? null
    this.now = options.now ?? Date.now
  }

  private entry(credentialId: string): CredentialCache {
    let e = this.byCredential.get(credentialId)
    if (!e) {
      e = { tags: null, fields: null, creating: new Map() }
      this.byCredential.set(credentialId, e)
    }
    return e
  }

  private tags(kit: KitApi): Promise<TagList> {
    const e = this.entry(kit.credentialId)
    if (!e.tags) {
      const readAt = this.now()
      const loading: Loading<TagList> = {
        promise: kit.listTags().then((list) => ({
          byName: new Map(list.map((t) => [t.name.toLowerCase(), t.id])),
          ids: new Set(list.map((t) => t.id)),
          readAt,
        })),
        value: null,
      }
      e.tags = loading
      loading.promise.then(
        (value) => {
          loading.value = value
        },
        () => {
          if (e.tags === loading) e.tags = null
        },
      )
    }
    return e.tags.promise
  }

  private fields(kit: KitApi): Promise<Map<string, string>> {
    const e = this.entry(kit.credentialId)
    if (!e.fields) {
      const loading = kit.listCustomFields().then((list) => {
        const fields = new Map<string, string>()
        for (const f of list) {
          fields.set(`key:${f.key}`, f.key)
          fields.set(`label:${f.label.toLowerCase()}`, f.key)
          fields.set(`id:${f.key}`, String(f.id))
        }
        return fields
      })
      e.fields = loading
      loading.catch(() => {
        if (e.fields === loading) e.fields = null
      })
    }
    return e.fields
  }

  /** Runs `create` once for concurrent callers asking for the same thing. */
  private once<T>(kit: KitApi, key: string, create: () => Promise<T>): Promise<T> {
    const { creating } = this.entry(kit.credentialId)
    const running = creating.get(key) as Promise<T> | undefined
    if (running) return running
    const started = create().finally(() => creating.delete(key))
    creating.set(key, started)
    return started
  }

  /**
   * The id of the tag with this name, created in Kit on first use. When Kit answers the creation
   * with a tag that already existed, the cached list missed it (created or renamed in Kit since it
   * was read): the list is dropped and read again at the next lookup.
   */
  async tagId(kit: KitApi, name: string): Promise<number> {
    const tags = await this.tags(kit)
    const lower = name.toLowerCase()
    const known = tags.byName.get(lower) ?? (await this.learntElsewhere(kit.credentialId, lower, tags))
    if (known !== null) return known
    return this.once(kit, `tag:${lower}`, async () => {
      let answer: Awaited<ReturnType<KitApi['createTag']>>
      try {
        answer = await kit.createTag(name)
      } catch (err) {
        if (!isKitError(err) || err.kind !== 'validation') throw err
        // Kit refused the creation (another creation of the name got there first): its list is
        // read again, once, and the tag it holds under the name is used; else the refusal stands.
        await this.reloadTags(kit)
        const found = (await this.tags(kit)).byName.get(lower)
        if (found === undefined) throw err
        await this.shared?.remember(kit.credentialId, lower, found, this.now())
        return found
      }
      const { tag, created } = answer
      if (created) {
        tags.byName.set(lower, tag.id)
        tags.ids.add(tag.id)
      } else {
        this.forgetTags(kit.credentialId, tags)
      }
      // Before this delivery settles, so a later event of the member, on any instance, finds it.
      await this.shared?.remember(kit.credentialId, lower, tag.id, this.now())
      return tag.id
    })
  }

  /** The id of an existing tag, or null (nothing to remove). */
  async existingTagId(kit: KitApi, name: string): Promise<number | null> {
    const tags = await this.tags(kit)
    const lower = name.toLowerCase()
    return tags.byName.get(lower) ?? (await this.learntElsewhere(kit.credentialId, lower, tags))
  }

  /**
   * A tag missing from this instance's list that another instance created (or found) since the
   * list was read: taken into the list. null without a shared registry or when none did.
   */
  private async learntElsewhere(credentialId: string, lower: string, tags: TagList): Promise<number | null> {
    if (!this.shared) return null
    const id = await this.shared.find(credentialId, lower, tags.readAt - CLOCK_MARGIN_MS)
    if (id === null) return null
    tags.byName.set(lower, id)
    tags.ids.add(id)
    return id
  }

  /** Whether Kit's tag list (as last read) holds this id. */
  async hasTag(kit: KitApi, id: number): Promise<boolean> {
    return (await this.tags(kit)).ids.has(id)
  }

  /**
   * Kit answered as if a cached tag id were wrong: reads the credential's tag list afresh. Callers
   * that arrive while that read is still under way share it rather than starting another.
   */
  async reloadTags(kit: KitApi): Promise<void> {
    const e = this.entry(kit.credentialId)
    if (e.tags?.value) e.tags = null
    await this.tags(kit)
  }

  /** Drops a credential's tag list if it is still the one `seen` (a newer read is kept). */
  private forgetTags(credentialId: string, seen: TagList): void {
    const e = this.byCredential.get(credentialId)
    if (e?.tags?.value === seen) e.tags = null
  }

  /**
   * The key Kit files a mapped field under, always taken from Kit, never derived here: the key of
   * Kit's field with the mapped label, else Kit's field with the mapped key, else the field is
   * created from its label on first use and the key from Kit's answer is used. The label comes
   * first because the mapped key may be the panel's guess for a field Kit did not have yet. A
   * creation that finds the field already there means the cached list missed it: it is dropped.
   */
  async fieldKey(kit: KitApi, key: string, label: string): Promise<string> {
    const fields = await this.fields(kit)
    const known = fields.get(`label:${label.toLowerCase()}`) ?? fields.get(`key:${key}`)
    if (known) return known
    return this.once(kit, `field:${label.toLowerCase()}`, async () => {
      let answer: Awaited<ReturnType<KitApi['createCustomField']>>
      try {
        answer = await kit.createCustomField(label)
      } catch (err) {
        if (!isKitError(err) || err.kind !== 'validation') throw err
        // Labels are unique per account: Kit refuses to create one it already has (created in
        // Kit, by another instance, or by a creation that timed out here but landed there). Its
        // list is read again, once, and that field is used; else the refusal stands.
        this.forgetFields(kit.credentialId)
        const fresh = await this.fields(kit)
        const found = fresh.get(`label:${label.toLowerCase()}`) ?? fresh.get(`key:${key}`)
        if (found === undefined) throw err
        return found
      }
      const { field, created } = answer
      fields.set(`key:${field.key}`, field.key)
      fields.set(`key:${key}`, field.key)
      fields.set(`label:${field.label.toLowerCase()}`, field.key)
      fields.set(`id:${field.key}`, String(field.id))
      if (!created) this.forgetFields(kit.credentialId)
      return field.key
    })
  }

  /**
   * Kit's numeric id of the field with this key (Kit's bulk field writes name fields by id), as
   * last listed or created; the list is read when not yet known. null: Kit has no such field.
   */
  async fieldId(kit: KitApi, key: string): Promise<number | null> {
    const id = (await this.fields(kit)).get(`id:${key}`)
    return id === undefined ? null : Number(id)
  }

  /** Drops a credential's custom fields only, so the next lookup reads Kit's list afresh. */
  forgetFields(credentialId: string): void {
    const e = this.byCredential.get(credentialId)
    if (e) e.fields = null
  }

  forget(credentialId: string): void {
    this.byCredential.delete(credentialId)
  }
}
