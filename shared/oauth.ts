/**
 * *Connect with Kit*: why an authorization did not connect, as a code the callback page sends the
 * panel, with the words both say. One table, so the page and the panel never disagree.
 */
export const OAUTH_FAILURES = {
  state_missing: 'Kit sent you back without the request this page expects. Start again from the Kit panel in App Station.',
  state_unknown:
    'This link is not one the plugin started, or it was replaced by a newer one. Start again from the Kit panel in App Station.',
  state_used: 'This link was already used. Start again from the Kit panel in App Station if Kit is not connected.',
  state_expired: 'This link expired (they last 10 minutes). Start again from the Kit panel in App Station.',
  access_denied: 'Kit was not given access, so nothing changed.',
  code_missing: 'Kit sent you back without an authorization. Start again from the Kit panel in App Station.',
  kit_refused: 'Kit did not accept the authorization, so nothing was saved. Start again from the Kit panel in App Station.',
  kit_unreachable: 'Kit could not be reached to finish connecting, so nothing was saved. Try again in a few minutes.',
} as const

export type OAuthFailureCode = keyof typeof OAUTH_FAILURES

/** The message type the callback page posts to the panel. */
export const OAUTH_MESSAGE_TYPE = 'kit-oauth'

/** The words for a failure code, or general words for a code this version does not know. */
export function oauthFailureWords(code: string | undefined): string {
  return code !== undefined && code in OAUTH_FAILURES
    ? OAUTH_FAILURES[code as OAuthFailureCode]
    : 'Kit could not be connected. Try again, or use an API key instead.'
}
