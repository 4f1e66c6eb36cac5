import type { EventMapping, Mappings } from './api.ts'

const empty = (): EventMapping => ({
  add_tags: [],
  remove_tags: [],
  add_to_forms: [],
  add_to_sequences: [],
  unsubscribe: false,
})

/** What a community that never saved mappings gets. */
export function defaultMappings(): Mappings {
  return {
    events: {
      'user.signed_up': { ...empty(), add_tags: [{ name: 'New Member' }] },
      'subscription.started': {
        ...empty(),
        add_tags: [{ name: 'Active Member' }],
        remove_tags: [{ name: 'Cancelled' }],
      },
      'subscription.canceled': {
        ...empty(),
        add_tags: [{ name: 'Cancelled' }],
        remove_tags: [{ name: 'Active Member' }],
      },
      'access.granted': { ...empty(), add_tags: [{ name: 'Access: {{access.level}}' }] },
      'access.revoked': { ...empty(), remove_tags: [{ name: 'Access: {{access.level}}' }] },
    },
    fields: [
      {
        source: 'mk_subscription_plan',
        kit_field: { key: 'subscription_plan', label: 'Subscription plan' },
      },
      { source: 'mk_access_level', kit_field: { key: 'access_level', label: 'Access level' } },
    ],
  }
}

export function emptyEventMapping(): EventMapping {
  return empty()
}
