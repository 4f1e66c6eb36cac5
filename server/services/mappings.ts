/**
 * Which Kit changes each member event makes, per community; defaults until the owner saves. Every
 * owner's save (PUT, PATCH, a restore) is kept as a version with who saved it, when and the change
 * in words; the plugin's own edits (ids Kit gave) are not owner saves and make no version.
 */
import { notCarriedProblem, placeholderNotCarried } from '#shared/event-catalogue.ts'
import { EVENT_TYPES, hasPlaceholder, hasUnclosedPlaceholder, unknownPlaceholder } from '#shared/events.ts'
import type { EventMapping, MappingHistoryPage, Mappings, MappingsPatch, MappingVersion, Rule, TagRef } from '#shared/api.ts'
import { conditionProblem, type Condition } from '#shared/conditions.ts'
import { defaultMappings, emptyEventMapping } from '#shared/defaults.ts'
import { BASELINE_WORDS, changeWords } from '#shared/mapping-changes.ts'
import { CONTROL_CHARACTER_PROBLEM, hasControlCharacter } from '#shared/text.ts'
import type { MappingHistoryRepository, MappingRecord, MappingRepository, MappingVersionSummary } from '../core/storage.ts'
import { iso } from '../core/time.ts'
import { AppError } from '../lib/errors.ts'

const invalid = (message: string) => new AppError(400, 'invalid_mappings', message)

function checkTags(tags: TagRef[], path: string): TagRef[] {
  return tags.map((tag, i) => {
    const name = tag.name.trim()
    if (name === '') throw invalid(`${path}[${i}].name must not be blank`)
    if (hasUnclosedPlaceholder(name)) {
      throw invalid(`${path}[${i}].name "${name}" opens a placeholder with {{ that is never closed; end it with }} or remove the {{`)
    }
    const unknown = unknownPlaceholder(name)
    if (unknown !== null) {
      throw invalid(
        `${path}[${i}].name uses an unknown placeholder {{${unknown}}}; use {{access.level}}, {{subscription.plan}} or {{member.fields.mk_…}}`,
      )
    }
    return tag.id === undefined ? { name } : { id: tag.id, name }
  })
}

/**
 * Names and labels end up in Kit and on the owner's screen: a line break, NUL or other control
 * character in one is refused, naming the part. Checked when saving only, so a document stored
 * before this rule still loads.
 */
function refuseControlCharacters(doc: Mappings): void {
  const check = (text: string, path: string) => {
    if (hasControlCharacter(text)) throw invalid(`${path} ${CONTROL_CHARACTER_PROBLEM}`)
  }
  for (const type of EVENT_TYPES) {
    const m = doc.events[type]
    if (!m) continue
    for (const [part, base] of partsOf(m, `events.${type}`)) {
      for (const list of ['add_tags', 'remove_tags', 'add_to_forms', 'add_to_sequences'] as const) {
        part[list].forEach((ref, i) => check(ref.name, `${base}.${list}[${i}].name`))
      }
    }
  }
  ;(doc.filter ?? []).forEach((c, i) => (c.values ?? [c.value ?? '']).forEach((v) => check(v, `filter[${i}]`)))
  doc.fields.forEach((f, i) => {
    check(f.kit_field.label, `fields[${i}].kit_field.label`)
    check(f.kit_field.key, `fields[${i}].kit_field.key`)
  })
}

const WHOLE_DOCUMENT = 'PUT /mappings replaces the whole document, so send every event type, or change only some with PATCH /mappings'

/**
 * `PUT` replaces the whole document, so a document without some event types would silently empty
 * them: refused, naming every missing one (`why` says why every one is needed).
 */
function requireEveryEventType(doc: Mappings, why = WHOLE_DOCUMENT): void {
  const missing = EVENT_TYPES.filter((type) => doc.events[type] === undefined)
  if (missing.length === 0) return
  throw invalid(`events is missing ${missing.join(', ')}: ${why}`)
}

/**
 * Rules that would make a mapping do nothing or undo itself: a placeholder the event type never
 * carries (the tag would never be applied), and the same tag both added and removed by one event.
 * Checked when saving only, like the control characters.
 */
function refuseContradictions(doc: Mappings): void {
  for (const type of EVENT_TYPES) {
    const m = doc.events[type]
    if (!m) continue
    for (const [part, base] of partsOf(m, `events.${type}`)) {
      for (const list of ['add_tags', 'remove_tags'] as const) {
        part[list].forEach((tag, i) => {
          const path = placeholderNotCarried(type, tag.name)
          if (path !== null) throw invalid(`${base}.${list}[${i}].name ${notCarriedProblem(type, path)}`)
        })
      }
      const added = new Set(part.add_tags.map((t) => t.name.trim().toLowerCase()))
      part.remove_tags.forEach((tag, i) => {
        if (added.has(tag.name.trim().toLowerCase())) {
          throw invalid(
            `${base}.remove_tags[${i}].name "${tag.name.trim()}" is also in add_tags of ${base === `events.${type}` ? type : base}; keep it in one of the two lists`,
          )
        }
      })
    }
    // Two rules without conditions always both apply: the same tag added by one and removed by the other is a contradiction.
    const always = partsOf(m, `events.${type}`).filter(([part]) => !('conditions' in part) || part.conditions.length === 0)
    const addedAlways = new Map(always.flatMap(([part, base]) => part.add_tags.map((t) => [t.name.trim().toLowerCase(), base] as const)))
    for (const [part, base] of always) {
      part.remove_tags.forEach((tag, i) => {
        const by = addedAlways.get(tag.name.trim().toLowerCase())
        if (by !== undefined && by !== base) {
          throw invalid(
            `${base}.remove_tags[${i}].name "${tag.name.trim()}" is added by ${by}, which always applies too; keep it in one of the two`,
          )
        }
      })
    }
  }
}

/** The mapping's own actions and each rule's, with where each sits in the document. */
function partsOf(m: EventMapping, base: string): [EventMapping | Rule, string][] {
  return [[m, base], ...(m.rules ?? []).map((rule, i): [Rule, string] => [rule, `${base}.rules[${i}]`])]
}

function checkConditions(conditions: Condition[], path: string): Condition[] {
  return conditions.map((c, i) => {
    const problem = conditionProblem(c, `${path}[${i}]`)
    if (problem) throw invalid(problem)
    return {
      field: c.field,
      op: c.op,
      ...(c.value !== undefined ? { value: c.value.trim() } : {}),
      ...(c.values !== undefined ? { values: c.values.map((v) => v.trim()) } : {}),
    }
  })
}

function checkRule(rule: Rule, path: string): Rule {
  return {
    conditions: checkConditions(rule.conditions, `${path}.conditions`),
    add_tags: checkTags(rule.add_tags, `${path}.add_tags`),
    remove_tags: checkTags(rule.remove_tags, `${path}.remove_tags`),
    add_to_forms: rule.add_to_forms.map((f) => ({ id: f.id, name: f.name })),
    add_to_sequences: rule.add_to_sequences.map((s) => ({ id: s.id, name: s.name })),
    unsubscribe: rule.unsubscribe,
  }
}

/** The only event type whose mapping may erase the member from Kit. */
const ERASING_TYPE = 'user.deleted'

/** Erasure is for a member who left the community: on any other event it is refused, naming it. */
function refuseMisplacedErase(doc: Mappings): void {
  for (const type of EVENT_TYPES) {
    if (type !== ERASING_TYPE && doc.events[type]?.erase !== undefined) {
      throw invalid(`events.${type}.erase is only for ${ERASING_TYPE}: erasing a member from Kit is what a deletion may do; remove it here`)
    }
  }
}

/** Checks what the schema cannot express and returns the document with every event type present. */
export function normaliseMappings(doc: Mappings): Mappings {
  const events: Mappings['events'] = {}
  for (const type of EVENT_TYPES) {
    const m: EventMapping = doc.events[type] ?? emptyEventMapping()
    const base = `events.${type}`
    events[type] = {
      add_tags: checkTags(m.add_tags, `${base}.add_tags`),
      remove_tags: checkTags(m.remove_tags, `${base}.remove_tags`),
      add_to_forms: m.add_to_forms.map((f) => ({ id: f.id, name: f.name })),
      add_to_sequences: m.add_to_sequences.map((s) => ({ id: s.id, name: s.name })),
      unsubscribe: m.unsubscribe,
      // Kept only where it means something, and only when on: documents without it stay as they were.
      ...(type === ERASING_TYPE && m.erase === true ? { erase: true } : {}),
      ...(m.rules && m.rules.length > 0 ? { rules: m.rules.map((r, i) => checkRule(r, `${base}.rules[${i}]`)) } : {}),
    }
  }
  const sources = new Set<string>()
  const keys = new Set<string>()
  const fields = doc.fields.map((f, i) => {
    if (sources.has(f.source)) throw invalid(`fields[${i}].source ${f.source} is mapped twice`)
    sources.add(f.source)
    const key = f.kit_field.key.trim()
    const label = f.kit_field.label.trim()
    if (key === '' || label === '') throw invalid(`fields[${i}].kit_field needs a key and a label`)
    if (keys.has(key)) throw invalid(`fields[${i}].kit_field ${key} already receives another field`)
    keys.add(key)
    return { source: f.source, kit_field: { key, label } }
  })
  const filter = checkConditions(doc.filter ?? [], 'filter')
  return { events, fields, ...(filter.length > 0 ? { filter } : {}) }
}

/** Tries of a read-merge-write before giving up on a document that keeps changing underneath. */
const SAVE_ATTEMPTS = 5

/** A document as it is stored: refused when it holds control characters or contradictions. */
function checked(doc: Mappings): Mappings {
  refuseMisplacedErase(doc)
  refuseControlCharacters(doc)
  refuseContradictions(doc)
  return normaliseMappings(doc)
}

/** A history page's size when none is asked for. */
const HISTORY_PAGE = 50

const encodeCursor = (version: number) => Buffer.from(`v:${version}`).toString('base64url')
function decodeCursor(cursor: string): number {
  const match = /^v:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (!match) throw new AppError(400, 'invalid_request', 'querystring.cursor is not a cursor this API gave out')
  return Number(match[1])
}

const toVersion = (row: MappingVersionSummary): MappingVersion => ({
  version: row.version,
  saved_by: row.savedBy,
  saved_at: iso(row.savedAt),
  change: row.change,
  restored_from: row.restoredFrom,
})

const versionNotFound = (version: number) => new AppError(404, 'not_found', `No saved version ${version} of the mappings in this community`)

/** The document in force: the stored one, or the defaults. */
const inForce = (row: MappingRecord | undefined): Mappings =>
  normaliseMappings(row ? (JSON.parse(row.document) as Mappings) : defaultMappings())

/** What an owner's save writes: the new document, from the document in force. */
interface OwnerSave {
  savedBy: string
  next: (current: Mappings) => Mappings
  restoredFrom?: number
}

/**
 * A draft to preview, checked as `PUT /mappings` checks a document: every event type present and
 * nothing a save would refuse. The message names the part under `draft.`, as the request body has it.
 */
export function checkedDraft(doc: Mappings): Mappings {
  try {
    requireEveryEventType(doc, 'a preview compares whole documents, so send every event type (as GET /mappings answers them)')
    return checked(doc)
  } catch (err) {
    if (err instanceof AppError && err.code === 'invalid_mappings') throw invalid(`draft.${err.message}`)
    throw err
  }
}

export class MappingService {
  constructor(
    private readonly repo: MappingRepository,
    private readonly history: MappingHistoryRepository,
  ) {}

  async get(communityId: string): Promise<Mappings> {
    return inForce(await this.repo.get(communityId))
  }

  /**
   * Stores the key Kit gave the custom field a mapping writes to (from Kit's field list or its
   * answer to creating the field), replacing the key the panel guessed from the label. Nothing
   * changes when the community never saved mappings, the key is already right, or another
   * mapping already writes to that key.
   */
  async learnFieldKey(communityId: string, source: string, key: string): Promise<void> {
    for (let attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
      const row = await this.repo.get(communityId)
      if (!row) return
      const doc = JSON.parse(row.document) as Mappings
      const field = doc.fields.find((f) => f.source === source)
      if (!field || field.kit_field.key === key) return
      if (doc.fields.some((f) => f !== field && f.kit_field.key === key)) return
      field.kit_field = { ...field.kit_field, key }
      // Only over the document read: an owner's save meanwhile is read again, never undone.
      if (await this.repo.replace({ communityId, document: JSON.stringify(doc), updatedAt: new Date().toISOString() }, row.document)) return
    }
  }

  /**
   * Holds the Kit tag a plain tag name stands for, once the plugin created or found it: `tagId`
   * is stored on every tag of the document with that name (any case) and no id, or with the id
   * `replacing` (a tag Kit no longer has), so the mapping keeps applying that tag when it is
   * renamed in Kit. A community that never saved mappings gets the defaults stored with the id.
   * Only over the document read: an owner's save meanwhile is read again, never undone.
   */
  async holdTagId(communityId: string, name: string, tagId: number, replacing: number | null = null): Promise<void> {
    const wanted = name.trim().toLowerCase()
    for (let attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
      const row = await this.repo.get(communityId)
      const doc = row ? (JSON.parse(row.document) as Mappings) : defaultMappings()
      let changed = false
      for (const mapping of Object.values(doc.events)) {
        const parts = mapping ? [mapping, ...(mapping.rules ?? [])] : []
        for (const tag of parts.flatMap((p) => [...p.add_tags, ...p.remove_tags])) {
          if (tag.name.trim().toLowerCase() !== wanted || hasPlaceholder(tag.name)) continue
          if (tag.id !== undefined && tag.id !== replacing) continue
          if (tag.id === tagId) continue
          tag.id = tagId
          changed = true
        }
      }
      if (!changed) return
      const record = { communityId, document: JSON.stringify(doc), updatedAt: new Date().toISOString() }
      if (row ? await this.repo.replace(record, row.document) : await this.repo.create(record)) return
    }
  }

  /** Replaces the whole document; every event type must be present. `savedBy`: the session token's `sub`. */
  put(communityId: string, doc: Mappings, savedBy: string): Promise<Mappings> {
    requireEveryEventType(doc)
    const saved = checked(doc)
    return this.save(communityId, { savedBy, next: () => saved })
  }

  /** Replaces the event types given and, when given, the field list; the rest stays as saved. */
  patch(communityId: string, change: MappingsPatch, savedBy: string): Promise<Mappings> {
    return this.save(communityId, {
      savedBy,
      next: (saved) => {
        const filter = change.filter ?? saved.filter
        return checked({
          events: { ...saved.events, ...change.events },
          fields: change.fields ?? saved.fields,
          ...(filter ? { filter } : {}),
        })
      },
    })
  }

  /** The community's saved versions, newest first, a page at a time. */
  async versions(communityId: string, page: { cursor?: string; limit?: number }): Promise<MappingHistoryPage> {
    const limit = page.limit ?? HISTORY_PAGE
    const rows = await this.history.list(communityId, {
      ...(page.cursor ? { beforeVersion: decodeCursor(page.cursor) } : {}),
      limit: limit + 1,
    })
    const items = rows.slice(0, limit)
    const last = items.at(-1)
    return { items: items.map(toVersion), next_cursor: rows.length > limit && last ? encodeCursor(last.version) : null }
  }

  /** One saved version's document. */
  async version(communityId: string, version: number): Promise<Mappings> {
    const row = await this.history.get(communityId, version)
    if (!row) throw versionNotFound(version)
    return normaliseMappings(JSON.parse(row.document) as Mappings)
  }

  /** Saves an earlier version's document again, as a new version that says which one it restored. */
  async restore(communityId: string, version: number, savedBy: string): Promise<Mappings> {
    const row = await this.history.get(communityId, version)
    if (!row) throw versionNotFound(version)
    const restored = checked(JSON.parse(row.document) as Mappings)
    return this.save(communityId, { savedBy, next: () => restored, restoredFrom: version })
  }

  /**
   * An owner's save: the new document is made from the one in force and stored with its version in
   * one transaction, only over the document read; a save meanwhile (another tab, another instance)
   * is read again, so the change in words always describes what the save replaced. The first save
   * also keeps what was in place before (the defaults or the stored document) as version 0, so it
   * can be restored.
   */
  private async save(communityId: string, owner: OwnerSave): Promise<Mappings> {
    for (let attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
      const row = await this.repo.get(communityId)
      const before = inForce(row)
      const after = owner.next(before)
      const now = Date.now()
      const storedAt = row ? Date.parse(row.updatedAt) : Number.NaN
      const version = await this.history.save({
        communityId,
        document: JSON.stringify(after),
        expected: row?.document ?? null,
        savedBy: owner.savedBy,
        savedAt: now,
        change: changeWords(before, after),
        restoredFrom: owner.restoredFrom ?? null,
        baseline: {
          document: JSON.stringify(before),
          savedAt: Number.isFinite(storedAt) ? storedAt : now,
          change: row ? BASELINE_WORDS.stored : BASELINE_WORDS.defaults,
        },
      })
      if (version !== null) return after
    }
    throw new AppError(
      409,
      'mappings_changed',
      'The mappings kept changing while this change was being saved. Reload them and make the change again.',
    )
  }
}
