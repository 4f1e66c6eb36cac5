/** The demo account the stand-in offers a newcomer: one key and a little of everything. */
export const DEMO_KEY = 'kit_demo_key'

/** The demo Kit app for Connect with Kit (`npm run start:offline`): a development client, not a secret. */
export const DEMO_OAUTH_CLIENT = { clientId: 'kit_demo_app', clientSecret: 'kit_demo_app_client_secret' }

export const DEMO_DATA = {
  tags: ['New Member', 'Active Member', 'Cancelled', 'VIP'],
  customFields: ['Subscription plan', 'Access level'],
  forms: [{ name: 'Community newsletter' }, { name: 'Early access waitlist' }],
  sequences: [{ name: 'Welcome series' }, { name: 'Win-back series', active: false }],
}
