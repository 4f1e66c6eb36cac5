/** The demo account the stand-in offers a newcomer: one key and a little of everything. */
export const DEMO_KEY = 'kit_demo_key'

export const DEMO_DATA = {
  tags: ['New Member', 'Active Member', 'Cancelled', 'VIP'],
  customFields: ['Subscription plan', 'Access level'],
  forms: [{ name: 'Community newsletter' }, { name: 'Early access waitlist' }],
  sequences: [{ name: 'Welcome series' }, { name: 'Win-back series', active: false }],
}
