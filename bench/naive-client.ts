/**
 * The "straightforward client" the economy benchmark compares against: what a first, honest
 * version of this integration does when it handles each event on its own, remembering nothing
 * between events. It follows the same default mappings and reaches the same end state in Kit.
 *
 * Per event:
 * 1. GET  /v4/subscribers?email_address=…        is the member a subscriber already?
 * 2. when the event carries mapped mk_* fields:
 *    per field: GET /v4/custom_fields (the list, to find the key by label), then
 *               POST /v4/custom_fields {label} when it is missing (Kit refuses a label it already has)
 * 3. not found: POST /v4/subscribers                create with first name and fields
 *    found:     PUT  /v4/subscribers/:id            only when first name or a field differs from what step 1 returned
 * 4. per tag to remove: GET /v4/tags (the list, to find the id by name), then
 *                       DELETE /v4/tags/:id/subscribers/:subscriber_id when the tag exists
 * 5. per tag to add:    POST /v4/tags {name} (create-or-get gives the id), then
 *                       POST /v4/tags/:id/subscribers/:subscriber_id
 */
import { ACCESS_LEVEL, type MemberEvent } from './lib/events.ts'

interface Mapping {
  add: string[]
  remove: string[]
}

/** The plugin's default mappings, tag templates filled from the event. */
const MAPPINGS: Record<string, (e: MemberEvent) => Mapping> = {
  'user.signed_up': () => ({ add: ['New Member'], remove: [] }),
  'subscription.started': () => ({ add: ['Active Member'], remove: ['Cancelled'] }),
  'subscription.canceled': () => ({ add: ['Cancelled'], remove: ['Active Member'] }),
  'access.granted': (e) => ({ add: [`Access: ${(e.data.access as { level?: string } | undefined)?.level ?? ACCESS_LEVEL}`], remove: [] }),
}

const FIELDS: Record<string, string> = { mk_subscription_plan: 'Subscription plan', mk_access_level: 'Access level' }

interface Subscriber {
  id: number
  first_name: string | null
  fields: Record<string, string | null>
}

export class NaiveKitClient {
  requests = 0

  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    this.requests += 1
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { 'x-kit-api-key': this.apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`Kit answered ${response.status} to ${method} ${path}: ${text}`)
    return (text === '' ? null : JSON.parse(text)) as T
  }

  async handle(e: MemberEvent): Promise<void> {
    const mapping = MAPPINGS[e.type]?.(e)
    if (!mapping) return
    const member = e.data.member as { email: string; first_name?: string; fields?: Record<string, string | null> }
    const email = member.email.trim().toLowerCase()

    const found = await this.call<{ subscribers: Subscriber[] }>(
      'GET',
      `/v4/subscribers?email_address=${encodeURIComponent(email)}&status=all`,
    )
    const fields: Record<string, string | null> = {}
    for (const [source, value] of Object.entries(member.fields ?? {})) {
      const label = FIELDS[source]
      if (!label) continue
      const { custom_fields } = await this.call<{ custom_fields: { key: string; label: string }[] }>('GET', '/v4/custom_fields')
      const existing = custom_fields.find((f) => f.label.toLowerCase() === label.toLowerCase())
      const key =
        existing?.key ?? (await this.call<{ custom_field: { key: string } }>('POST', '/v4/custom_fields', { label })).custom_field.key
      fields[key] = value
    }
    let subscriber = found.subscribers[0]
    if (!subscriber) {
      const created = await this.call<{ subscriber: Subscriber }>('POST', '/v4/subscribers', {
        email_address: email,
        first_name: member.first_name ?? null,
        fields,
      })
      subscriber = created.subscriber
    } else {
      const existing = subscriber
      const changed =
        (member.first_name !== undefined && member.first_name !== existing.first_name) ||
        Object.entries(fields).some(([key, value]) => (existing.fields[key] ?? null) !== value)
      if (changed) await this.call('PUT', `/v4/subscribers/${existing.id}`, { first_name: member.first_name, fields })
    }

    for (const name of mapping.remove) {
      const { tags } = await this.call<{ tags: { id: number; name: string }[] }>('GET', '/v4/tags')
      const tag = tags.find((t) => t.name.toLowerCase() === name.toLowerCase())
      if (tag) await this.call('DELETE', `/v4/tags/${tag.id}/subscribers/${subscriber.id}`)
    }
    for (const name of mapping.add) {
      const { tag } = await this.call<{ tag: { id: number } }>('POST', '/v4/tags', { name })
      await this.call('POST', `/v4/tags/${tag.id}/subscribers/${subscriber.id}`, {})
    }
  }
}
