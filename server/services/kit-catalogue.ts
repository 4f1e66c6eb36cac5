/**
 * The connected Kit account's tags, custom fields, forms and sequences for the panel's pickers,
 * cached briefly per community, and the drift checks behind Test connection.
 */
import type { ConnectionTestResult, KitCustomField, KitForm, KitSequence, KitTag, MappingCheck, Mappings } from '#shared/api.ts'
import { CONTROL_CHARACTER_PROBLEM, hasControlCharacter } from '#shared/text.ts'
import { hasPlaceholder } from '#shared/events.ts'
import { AppError } from '../lib/errors.ts'
import type { HeldTagRepository } from '../core/storage.ts'
import type { ConnectionService } from './connections.ts'
import type { MappingService } from './mappings.ts'

/** A sequence as the catalogue keeps it: `hold` marks one Kit holds inactive; the panel sees it as `active: false`. */
export type CatalogueSequence = KitSequence & { hold: boolean }

export interface Catalogue {
  tags: KitTag[]
  customFields: KitCustomField[]
  /** Active forms (what the pickers offer). */
  forms: KitForm[]
  sequences: CatalogueSequence[]
}

/** What Test connection compares the mappings with: the catalogue and the archived forms. */
export interface CatalogueWithArchive extends Catalogue {
  archivedForms: KitForm[]
}

type Kind = keyof Catalogue

interface CacheEntry<T> {
  at: number
  value: Promise<T>
}

export class KitCatalogueService {
  private readonly cache = new Map<string, CacheEntry<unknown>>()

  constructor(
    private readonly connections: ConnectionService,
    private readonly mappings: MappingService,
    /** Which tag ids the plugin held for a name itself (made again on first use when deleted in Kit). */
    private readonly held: HeldTagRepository,
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
      this.connections.withKit(communityId, async (kit) => (await kit.listTags()).map((t) => ({ id: t.id, name: t.name }))),
    )
  }

  customFields(communityId: string): Promise<KitCustomField[]> {
    return this.cached(communityId, 'customFields', () =>
      this.connections.withKit(communityId, async (kit) =>
        (await kit.listCustomFields()).map((f) => ({ id: f.id, key: f.key, label: f.label })),
      ),
    )
  }

  /**
   * The forms Kit's own libraries offer — embedded forms (`type=embed`, so no hosted landing pages,
   * and no Creator Profile forms) and legacy forms — active first, then archived ones flagged
   * `archived` (the panel warns about mapped ones and never offers them).
   */
  forms(communityId: string): Promise<KitForm[]> {
    const toForm = (f: { id: number; name: string; type?: string | null; archived: boolean }): KitForm => ({
      id: f.id,
      name: f.name,
      type: f.type ?? null,
      archived: f.archived,
    })
    return this.cached(communityId, 'forms', () =>
      this.connections.withKit(communityId, async (kit) => {
        const [forms, legacy] = await Promise.all([kit.listForms('all'), kit.listLegacyForms()])
        const active = [...forms.filter((f) => !f.archived), ...legacy]
        return [...active, ...forms.filter((f) => f.archived)].map(toForm)
      }),
    )
  }

  sequences(communityId: string): Promise<CatalogueSequence[]> {
    return this.cached(communityId, 'sequences', () =>
      this.connections.withKit(communityId, async (kit) =>
        (await kit.listSequences()).map((s) => ({ id: s.id, name: s.name, hold: s.hold, active: !s.hold })),
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

  /** The document's tag ids Kit no longer has (nor a tag of their name) that the plugin held for their name itself. */
  private async heldGone(communityId: string, doc: Mappings, tags: KitTag[]): Promise<Set<number>> {
    const ids = new Set(tags.map((t) => t.id))
    const names = new Set(tags.map((t) => t.name.toLowerCase()))
    const gone = new Set<number>()
    for (const m of Object.values(doc.events)) {
      for (const ref of [...(m?.add_tags ?? []), ...(m?.remove_tags ?? [])]) {
        if (ref.id === undefined || ids.has(ref.id) || names.has(ref.name.toLowerCase())) continue
        if (await this.held.isHeld(communityId, ref.name.toLowerCase(), ref.id)) gone.add(ref.id)
      }
    }
    return gone
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
      const doc = await this.mappings.get(communityId)
      const [tags, customFields, forms, sequences] = await Promise.all([
        this.tags(communityId),
        this.customFields(communityId),
        this.forms(communityId),
        this.sequences(communityId),
      ])
      const checks = mappingChecks(
        doc,
        { tags, customFields, forms, sequences, archivedForms: forms.filter((f) => f.archived) },
        await this.heldGone(communityId, doc, tags),
      )
      return { ok: true, account, latency_ms, checks }
    } catch (err) {
      if (err instanceof AppError && err.code !== 'kit_busy') return { ok: false, error: { code: err.code, message: err.message } }
      throw err
    }
  }
}

/**
 * Every tag, form, sequence and custom field the mappings use, and whether Kit still has it in a
 * usable state: archived forms and inactive (on hold) sequences are reported before an event fails
 * on them. A tag the plugin held for a name itself (`heldGone`) is made again on first use.
 */
export function mappingChecks(doc: Mappings, kit: CatalogueWithArchive, heldGone: ReadonlySet<number> = new Set()): MappingCheck[] {
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
      if (hasPlaceholder(ref.name)) {
        add(
          key,
          {
            kind: 'tag',
            name: ref.name,
            id: null,
            status: 'created_on_first_use',
            message: 'Templated: each filled-in tag is created in Kit on first use.',
          },
          type,
        )
        continue
      }
      const byId = ref.id !== undefined ? tagsById.get(ref.id) : undefined
      const found = byId ?? tagsByName.get(ref.name.toLowerCase())
      if (found) {
        // Kit's current name: a tag held by id may have been renamed in Kit since it was mapped.
        add(key, { kind: 'tag', name: found.name, id: found.id, status: 'ok', message: `Tag exists in Kit (#${found.id}).` }, type)
      } else if (ref.id !== undefined && heldGone.has(ref.id)) {
        add(
          key,
          { kind: 'tag', name: ref.name, id: null, status: 'created_on_first_use', message: 'Deleted in Kit: created again on first use.' },
          type,
        )
      } else if (ref.id !== undefined) {
        add(
          key,
          {
            kind: 'tag',
            name: ref.name,
            id: ref.id,
            status: 'missing',
            message: `Tag "${ref.name}" (#${ref.id}) was deleted in Kit: events that add it fail until you pick a tag again for ${type}.`,
          },
          type,
        )
      } else {
        add(
          key,
          { kind: 'tag', name: ref.name, id: null, status: 'created_on_first_use', message: 'Not in Kit yet: created on first use.' },
          type,
        )
      }
    }
    for (const ref of m.add_to_forms) {
      const active = kit.forms.find((f) => f.id === ref.id && !f.archived)
      const archived = active ? undefined : (kit.archivedForms.find((f) => f.id === ref.id) ?? kit.forms.find((f) => f.id === ref.id))
      const message = active
        ? 'Form exists in Kit.'
        : archived
          ? `Form "${archived.name}" is archived in Kit: members cannot be added to it. Restore it in Kit or pick another form for ${type}.`
          : `Form "${ref.name}" (#${ref.id}) no longer exists in Kit: pick another form for ${type}.`
      add(
        `form:${ref.id}`,
        { kind: 'form', name: (active ?? archived)?.name ?? ref.name, id: ref.id, status: active ? 'ok' : 'missing', message },
        type,
      )
    }
    for (const ref of m.add_to_sequences) {
      const sequence = kit.sequences.find((s) => s.id === ref.id)
      const message = !sequence
        ? `Sequence "${ref.name}" (#${ref.id}) no longer exists in Kit: pick another sequence for ${type}.`
        : sequence.hold
          ? `Sequence "${sequence.name}" is inactive (on hold) in Kit: Kit refuses to add members to it. Turn it on in Kit or take it out of ${type}.`
          : 'Sequence exists in Kit.'
      add(
        `sequence:${ref.id}`,
        { kind: 'sequence', name: sequence?.name ?? ref.name, id: ref.id, status: sequence && !sequence.hold ? 'ok' : 'missing', message },
        type,
      )
    }
  }
  // The same order deliveries use: Kit's field with the mapped label, else the one with the mapped
  // key (the key may be the panel's guess for a field Kit did not have when it was mapped).
  for (const f of doc.fields) {
    const byLabel = kit.customFields.find((c) => c.label.toLowerCase() === f.kit_field.label.toLowerCase())
    const field = byLabel ?? kit.customFields.find((c) => c.key === f.kit_field.key)
    let status: MappingCheck['status'] = 'ok'
    let message = field ? `Custom field exists in Kit (key ${field.key}).` : ''
    if (!field) {
      status = 'created_on_first_use'
      message = `Not in Kit yet: the field "${f.kit_field.label}" is created on first use.`
    } else if (!byLabel) {
      message = `Kit's field with key ${field.key} is now labelled "${field.label}"; values still go to it.`
    }
    add(`field:${f.kit_field.key}`, { kind: 'custom_field', name: f.kit_field.label, id: field?.id ?? null, status, message }, f.source)
  }
  return [...checks.values()]
}
