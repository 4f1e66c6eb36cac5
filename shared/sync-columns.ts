/** Initial syncs: the member file's columns, without the schema library, so the panel can read them too. */

/** The member file's columns (CSV header or JSON Lines keys). */
export const SYNC_COLUMNS = [
  'email',
  'member_id',
  'first_name',
  'subscription_plan',
  'access_level',
  'subscription_status',
  'consent',
  'consent_at',
] as const
/** Any `mk_*` member field is a column too. */
export const SYNC_FIELD_COLUMN = /^mk_[a-z0-9_]{1,60}$/
/** The most columns a member file's mapping names (and a CSV header may have). */
export const SYNC_MAX_COLUMNS = 500
