/**
 * The two small pages of *Connect with Kit*, top-level pages outside the panel: the callback Kit
 * sends the popup to, and the install page Kit's App Store opens. Each runs under its own strict
 * policy (only its nonce-bearing script and style, no framing, no referrer: the callback's address
 * carries Kit's code) and is never cached. Nothing secret is written into either.
 */
import { randomBytes } from 'node:crypto'
import { OAUTH_MESSAGE_TYPE, oauthFailureWords } from '#shared/oauth.ts'
import type { OAuthResultMessage } from '#shared/api.ts'
import type { CallbackOutcome } from '../services/oauth.ts'

export interface Page {
  headers: Record<string, string>
  html: string
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')

/** JSON safe inside a <script> element. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.25rem}.code{font:600 1.75rem/1.2 ui-monospace,monospace;letter-spacing:.1em;padding:.5rem 1rem;border:1px solid #d0d7de;border-radius:6px;display:inline-block}
.muted{color:#57606a}`

function page(title: string, body: string, script: string | null): Page {
  const nonce = randomBytes(16).toString('base64')
  const policy = [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    script === null ? null : `script-src 'nonce-${nonce}'`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ]
    .filter((part) => part !== null)
    .join('; ')
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
${body}
${script === null ? '' : `<script nonce="${nonce}">${script}</script>`}
</body>
</html>
`
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': policy,
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    },
  }
}

/**
 * Where the popup lands: says what happened, tells the panel that opened it (postMessage to the
 * panel's exact origin, the outcome only), then closes — or, for an install begun in Kit's App
 * Store, goes back to Kit's page.
 */
export function callbackPage(outcome: CallbackOutcome, panelOrigin: string): Page {
  const message: OAuthResultMessage = outcome.ok
    ? { type: OAUTH_MESSAGE_TYPE, ok: true }
    : { type: OAUTH_MESSAGE_TYPE, ok: false, code: outcome.code }
  const title = outcome.ok ? 'Kit is connected' : 'Kit was not connected'
  const words = outcome.ok ? 'Kit is connected to your App Station community. You can close this window.' : oauthFailureWords(outcome.code)
  const script = `(function () {
  var message = ${scriptJson(message)};
  var returnTo = ${scriptJson(outcome.returnTo)};
  try { history.replaceState(null, '', location.pathname); } catch (e) {}
  var told = false;
  try {
    if (window.opener && !window.opener.closed) { window.opener.postMessage(message, ${scriptJson(panelOrigin)}); told = true; }
  } catch (e) {}
  if (returnTo) { location.replace(returnTo); return; }
  if (told) window.close();
})();`
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(words)}</p>`, script)
}

/** The install page Kit's App Store opens: the code to enter in App Station, or why there is none. */
export function installPage(result: { code: string; minutes: number } | { problem: string }): Page {
  if ('problem' in result) {
    return page('Install Kit for App Station', `<h1>This install link is not valid</h1>\n<p>${escapeHtml(result.problem)}</p>`, null)
  }
  const body = `<h1>Finish installing Kit for App Station</h1>
<ol>
<li>Open App Station as an owner or admin of your community and go to <strong>Settings › Integrations › Kit</strong>.</li>
<li>Choose <strong>Finish an install from Kit</strong> and enter this code:</li>
</ol>
<p class="code">${escapeHtml(result.code)}</p>
<p class="muted">The code works once, within ${result.minutes} minutes. Kit then asks you to allow access, and brings you back to Kit's App Store.</p>`
  return page('Install Kit for App Station', body, null)
}
