/**
 * Tag and custom-field ids per Kit credential, learnt once and reused, so an event costs only the
 * calls that change something. Concurrent deliveries share one lookup or creation of the same
 * thing (single flight). Entries are dropped when Kit says an id no longer exists.
 */
import type { KitApi } from '../kit/client.ts'

interface CredentialCache {
  tags: Promise<Map<string, number>> | null
  fields: Promise<Map<string, string>> | null
  /** Creations in flight, by tag name or field label (lower-cased). */
  creating: Map<string, Promise<unknown>>
}

export class KitIdCache {
  private readonly byCredential = new Map<string, CredentialCache>()

  private entry(credentialId: string): CredentialCache {
    let e = this.byCredential.get(credentialId)
    if (!e) {
      e = { tags: null, fields: null, creating: new Map() }
      this.byCredential.set(credentialId, e)
    }
    return e
  }

  private tags(kit: KitApi): Promise<Map<string, number>> {
    const e = this.entry(kit.credentialId)
    if (!e.tags) {
      const loading = kit.listTags().then((list) => new Map(list.map((t) => [t.name.toLowerCase(), t.id])))
      e.tags = loading
      loading.catch(() => {
        if (e.tags === loading) e.tags = null
      })
    }
    return e.tags
  }

  private fields(kit: KitApi): Promise<Map<string, string>> {
    const e = this.entry(kit.credentialId)
    if (!e.fields) {
      const loading = kit.listCustomFields().then((list) => {
        const fields = new Map<string, string>()
        for (const f of list) {
          fields.set(`key:${f.key}`, f.key)
          fields.set(`label:${f.label.toLowerCase()}`, f.key)
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

  /** The id of the tag with this name, created in Kit on first use. */
  async tagId(kit: KitApi, name: string): Promise<number> {
    const tags = await this.tags(kit)
    const known = tags.get(name.toLowerCase())
    if (known !== undefined) return known
    return this.once(kit, `tag:${name.toLowerCase()}`, async () => {
      const { tag } = await kit.createTag(name)
      tags.set(name.toLowerCase(), tag.id)
      return tag.id
    })
  }

  /** The id of an existing tag, or null (nothing to remove). */
  async existingTagId(kit: KitApi, name: string): Promise<number | null> {
    return (await this.tags(kit)).get(name.toLowerCase()) ?? null
  }

  /**
   * The key Kit files a mapped field under, always taken from Kit, never derived here: the key of
   * Kit's field with the mapped label, else Kit's field with the mapped key, else the field is
   * created from its label on first use and the key from Kit's answer is used. The label comes
   * first because the mapped key may be the panel's guess for a field Kit did not have yet.
   */
  async fieldKey(kit: KitApi, key: string, label: string): Promise<string> {
    const fields = await this.fields(kit)
    const known = fields.get(`label:${label.toLowerCase()}`) ?? fields.get(`key:${key}`)
    if (known) return known
    return this.once(kit, `field:${label.toLowerCase()}`, async () => {
      const { field } = await kit.createCustomField(label)
      fields.set(`key:${field.key}`, field.key)
      fields.set(`key:${key}`, field.key)
      fields.set(`label:${field.label.toLowerCase()}`, field.key)
      return field.key
    })
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
