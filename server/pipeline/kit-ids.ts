/**
 * Tag and custom-field ids per Kit credential, learnt once and reused, so an event costs only the
 * calls that change something. Entries are dropped when Kit says an id no longer exists.
 */
import type { KitApi } from '../kit/client.ts'

interface CredentialCache {
  tags: Map<string, number> | null
  fields: Map<string, string> | null
}

export class KitIdCache {
  private readonly byCredential = new Map<string, CredentialCache>()

  private entry(credentialId: string): CredentialCache {
    let e = this.byCredential.get(credentialId)
    if (!e) {
      e = { tags: null, fields: null }
      this.byCredential.set(credentialId, e)
    }
    return e
  }

  private async tags(kit: KitApi): Promise<Map<string, number>> {
    const e = this.entry(kit.credentialId)
    if (!e.tags) {
      const list = await kit.listTags()
      e.tags = new Map(list.map((t) => [t.name.toLowerCase(), t.id]))
    }
    return e.tags
  }

  /** The id of the tag with this name, created in Kit on first use. */
  async tagId(kit: KitApi, name: string): Promise<number> {
    const tags = await this.tags(kit)
    const known = tags.get(name.toLowerCase())
    if (known !== undefined) return known
    const { tag } = await kit.createTag(name)
    tags.set(name.toLowerCase(), tag.id)
    return tag.id
  }

  /** The id of an existing tag, or null (nothing to remove). */
  async existingTagId(kit: KitApi, name: string): Promise<number | null> {
    return (await this.tags(kit)).get(name.toLowerCase()) ?? null
  }

  /**
   * The key Kit files a mapped field under: the mapped key when Kit has it, else the field is
   * created from its label on first use and Kit's derived key is used.
   */
  async fieldKey(kit: KitApi, key: string, label: string): Promise<string> {
    const e = this.entry(kit.credentialId)
    if (!e.fields) {
      const list = await kit.listCustomFields()
      e.fields = new Map()
      for (const f of list) {
        e.fields.set(`key:${f.key}`, f.key)
        e.fields.set(`label:${f.label.toLowerCase()}`, f.key)
      }
    }
    const known = e.fields.get(`key:${key}`) ?? e.fields.get(`label:${label.toLowerCase()}`)
    if (known) return known
    const { field } = await kit.createCustomField(label)
    e.fields.set(`key:${field.key}`, field.key)
    e.fields.set(`key:${key}`, field.key)
    e.fields.set(`label:${field.label.toLowerCase()}`, field.key)
    return field.key
  }

  forget(credentialId: string): void {
    this.byCredential.delete(credentialId)
  }
}
