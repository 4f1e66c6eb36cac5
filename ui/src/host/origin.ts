/**
 * The App Station origin the panel may talk to. The server writes it into the panel page as
 * `<meta name="appstation-origin" content="https://…">`; anything that is not a plain origin is refused.
 */
export function readAllowedOrigin(doc: Document): string | null {
  const content = doc.querySelector('meta[name="appstation-origin"]')?.getAttribute('content')?.trim()
  if (!content) return null
  try {
    const url = new URL(content)
    return url.origin === content.replace(/\/$/, '') && url.origin !== 'null' ? url.origin : null
  } catch {
    return null
  }
}
