import { integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/** A community's saved mapping document (`Mappings` in the settings API); absent means the defaults. */
export const mappings = sqliteTable('mappings', {
  communityId: text('community_id').primaryKey(),
  document: text('document').notNull(),
  updatedAt: text('updated_at').notNull(),
})

/**
 * The Kit tag a templated tag mapping (`Access: {{access.level}}`) stands for, per filled-in name
 * (lower-cased), held from the first time the plugin created or found it: the tag stays the same
 * when it is renamed in Kit. A plain tag name holds its id in the mapping document instead.
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
