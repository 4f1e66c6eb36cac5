/**
 * The connected Kit account's tags, custom fields, forms and sequences for the panel's pickers,
 * cached briefly per community, and the drift checks behind Test connection.
 */
import type {
  ConnectionTestResult,
  KitCustomField,
  KitForm,
  KitSequence,
  KitTag,
  MappingCheck,
  Mappings,
} from '../../shared/api.ts'
import { CONTROL_CHARACTER_PROBLEM, hasControlCharacter } from '../../shared/text.ts'
import { AppError } from '../lib/errors.ts'
import type { ConnectionService } from './connections.ts'
import type { MappingService } from './mappings.ts'

export interface Catalogue {
  tags: KitTag[]
  customFields: KitCustomField[]
  forms: KitForm[]
  sequences: KitSequence[]
}

type Kind = keyof Catalogue

interface CacheEntry<T> {
  at: number
  value: Promise<T>
}

const TEMPLATE = /\{\{[^}]*\}\}/

export class KitCatalogueService {
  private readonly cache = new Map<string, CacheEntry<unknown>>()

  constructor(
    private readonly connections: ConnectionService,
    private readonly mappings: MappingService,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  private cached<K extends Kind>(communityId: string, kind: K, load: () => Promise<Catalogue[K]>): Promise<Catalogue[K]> {
    const key = `${communityId}\u0000${kind}`
    const hit = this.cache.get(key) as CacheEntry<Catalogue[K]> | undefined
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value
    const value = load()
    this.cache.set(key, { at: this.now(), value })
    value.catch(() => this.cache.delete(key))
    return value
  }

  /** Forget a community's cached lists (after a change of key or a tag creation). */
  invalidate(communityId: string, kind?: Kind): void {
    for (const key of this.cache.keys()) {
      if (key.startsWith(`${communityId}\u0000`) && (!kind || key.endsWith(`\u0000${kind}`))) this.cache.delete(key)
    }
  }

  tags(communityId: string): Promise<KitTag[]> {
    return this.cached(communityId, 'tags', () =>
      this.connections.withKit(communityId, async (kit) =>
        (await kit.listTags()).map((t) => ({ id: t.id, name: t.name })),
      ),
    )
  }

  customFields(communityId: string): Promise<KitCustomField[]> {
    return this.cached(communityId, 'customFields', () =>
      this.connections.withKit(communityId, async (kit) =>
        (await kit.listCustomFields()).map((f) => ({ id: f.id, key: f.key, label: f.label })),
      ),
    )
  }

  forms(communityId: string): Promise<KitForm[]> {
    return this.cached(communityId, 'forms', () =>
      this.connections.withKit(communityId, async (kit) =>
        (await kit.listForms()).map((f) => ({ id: f.id, name: f.name, type: f.type ?? null, archived: Boolean(f.archived) })),
      ),
    )
  }

  sequences(communityId: string): Promise<KitSequence[]> {
    return this.cached(communityId, 'sequences', () =>
      this.connections.withKit(communityId, async (kit) =>
        (await kit.listSequences()).map((s) => ({ id: s.id, name: s.name })),
      ),
    )
  }

  async createTag(communityId: string, rawName: string): Promise<{ tag: KitTag; created: boolean }> {
    const name = rawName.trim()
    if (name === '') throw new AppError(400, 'invalid_request', 'body.name must not be blank')
    if (hasControlCharacter(rawName)) throw new AppError(400, 'invalid_request', `body.name ${CONTROL_CHARACTER_PROBLEM}`)
    const result = await this.connections.withKit(communityId, (kit) => kit.createTag(name))
    this.invalidate(communityId, 'tags')
    return { tag: { id: result.tag.id, name: result.tag.name }, created: result.created }
  }

  /** Test connection: the account, the round trip, and whether everything the mappings use still exists. */
  async test(communityId: string): Promise<ConnectionTestResult> {
    const started = performance.now()
    let account
    try {
      account = await this.connections.account(communityId)
    } catch (err) {
      if (err instanceof AppError && err.code !== 'kit_busy') return { ok: false, error: { code: err.code, message: err.message } }
      throw err
    }
    const latency_ms = Math.round(performance.now() - started)
    this.invalidate(communityId)
    try {
      const [tags, customFields, forms, sequences] = await Promise.all([
        this.tags(communityId),
        this.customFields(communityId),
        this.forms(communityId),
        this.sequences(communityId),
      ])
      const checks = mappingChecks(this.mappings.get(communityId), { tags, customFields, forms, sequences })
      return { ok: true, account, latency_ms, checks }
    } catch (err) {
      if (err instanceof AppError && err.code !== 'kit_busy') return { ok: false, error: { code: err.code, message: err.message } }
      throw err
    }
  }
}

/** Every tag, form, sequence and custom field the mappings use, and whether Kit still has it. */
export function mappingChecks(doc: Mappings, kit: Catalogue): MappingCheck[] {
  const checks = new Map<string, MappingCheck>()
  const add = (key: string, check: Omit<MappingCheck, 'used_by'>, usedBy: string) => {
    const existing = checks.get(key)
    if (existing) {
      if (!existing.used_by.includes(usedBy)) existing.used_by.push(usedBy)
      return
    }
    checks.set(key, { ...check, used_by: [usedBy] })
  }
  const tagsByName = new Map(kit.tags.map((t) => [t.name.toLowerCase(), t]))
  const tagsById = new Map(kit.tags.map((t) => [t.id, t]))

  for (const [type, m] of Object.entries(doc.events)) {
    if (!m) continue
    for (const ref of [...m.add_tags, ...m.remove_tags]) {
      const key = `tag:${ref.id ?? ''}:${ref.name.toLowerCase()}`
      if (TEMPLATE.test(ref.name)) {
        add(key, { kind: 'tag', name: ref.name, id: null, status: 'created_on_first_use', message: 'Templated: each filled-in tag is created in Kit on first use.' }, type)
        continue
      }
      const byId = ref.id !== undefined ? tagsById.get(ref.id) : undefined
      const found = byId ?? tagsByName.get(ref.name.toLowerCase())
      if (found) {
        add(key, { kind: 'tag', name: ref.name, id: found.id, status: 'ok', message: `Tag exists in Kit (#${found.id}).` }, type)
      } else if (ref.id !== undefined) {
        add(key, { kind: 'tag', name: ref.name, id: ref.id, status: 'missing', message: `Tag #${ref.id} was deleted in Kit; a new tag named "${ref.name}" will be created on next use.` }, type)
      } else {
        add(key, { kind: 'tag', name: ref.name, id: null, status: 'created_on_first_use', message: 'Not in Kit yet: created on first use.' }, type)
      }
    }
    for (const ref of m.add_to_forms) {
      const form = kit.forms.find((f) => f.id === ref.id)
      const status = form && !form.archived ? 'ok' : 'missing'
      const message = !form
        ? `Form #${ref.id} no longer exists in Kit: pick another form for ${type}.`
        : form.archived
          ? `Form "${form.name}" is archived in Kit: members cannot be added to it.`
          : 'Form exists in Kit.'
      add(`form:${ref.id}`, { kind: 'form', name: form?.name ?? ref.name, id: ref.id, status, message }, type)
    }
    for (const ref of m.add_to_sequences) {
      const sequence = kit.sequences.find((s) => s.id === ref.id)
      add(
        `sequence:${ref.id}`,
        {
          kind: 'sequence',
          name: sequence?.name ?? ref.name,
          id: ref.id,
          status: sequence ? 'ok' : 'missing',
          message: sequence ? 'Sequence exists in Kit.' : `Sequence #${ref.id} no longer exists in Kit: pick another sequence for ${type}.`,
        },
        type,
      )
    }
  }
  for (const f of doc.fields) {
    const byKey = kit.customFields.find((c) => c.key === f.kit_field.key)
    const byLabel = kit.customFields.find((c) => c.label.toLowerCase() === f.kit_field.label.toLowerCase())
    let status: MappingCheck['status'] = 'ok'
    let message = `Custom field exists in Kit (key ${f.kit_field.key}).`
    if (!byKey && byLabel) {
      status = 'missing'
      message = `Kit now keys "${byLabel.label}" as ${byLabel.key}, not ${f.kit_field.key} (the label was renamed): pick the field again.`
    } else if (!byKey) {
      status = 'created_on_first_use'
      message = `Not in Kit yet: the field "${f.kit_field.label}" is created on first use.`
    }
    add(`field:${f.kit_field.key}`, { kind: 'custom_field', name: f.kit_field.label, id: byKey?.id ?? null, status, message }, f.source)
  }
  return [...checks.values()]
}
