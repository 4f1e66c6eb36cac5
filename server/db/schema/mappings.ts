import { integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/** A community's saved mapping document (`Mappings` in the settings API); absent means the defaults. */
export const mappings = sqliteTable('mappings', {
  communityId: text('community_id').primaryKey(),
  document: text('document').notNull(),
  updatedAt: text('updated_at').notNull(),
})

/**
 * The Kit tag a tag mapped by name stands for, per credential and lower-cased name (a templated
 * one, `Access: {{access.level}}`, per filled-in name), held from the first time the plugin created
 * or found it: the tag stays the same when it is renamed in Kit. A plain name's id is also saved in
 * the mapping document, which is where deliveries read it; the row says the plugin chose it.
 */
export const heldTags = sqliteTable(
  'held_tags',
  {
    communityId: text('community_id').notNull(),
    credentialId: text('credential_id').notNull(),
    name: text('name').notNull(),
    tagId: integer('tag_id').notNull(),
    heldAt: integer('held_at').notNull(),
  },
  (t) => [primaryKey({ name: 'held_tags_pk', columns: [t.communityId, t.credentialId, t.name] })],
)
