/** Kit's shapes as the client returns them: only the properties the plugin relies on. */
export interface KitAccountInfo {
  /** Kit requires only the email in its answer; the id may be absent. */
  user: { email: string; id: number | null }
  account: { id: number; name: string; plan_type: string | null; primary_email_address: string }
}

export interface KitSubscriber {
  id: number
  email_address: string
  first_name: string | null
  state: string
  created_at: string
  fields: Record<string, string | null>
}

export interface KitTagItem {
  id: number
  name: string
}

export interface KitCustomFieldItem {
  id: number
  key: string
  label: string
  name: string
}

export interface KitFormItem {
  id: number
  name: string
  type: string | null
  /** null for hosted landing pages, Creator Profile / Creator Network forms and legacy forms. */
  format: string | null
  archived: boolean
  /** A legacy form: joined through `/v4/landing_pages/{id}/subscribers/{subscriber_id}`. */
  legacy: boolean
}

export interface KitSequenceItem {
  id: number
  name: string
  /** Kit shows a sequence that is not active as on hold; adding to it answers 422. */
  hold: boolean
}
