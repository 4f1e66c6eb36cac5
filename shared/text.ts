/**
 * Characters refused in text that reaches Kit or an owner's screen. Control characters (C0 such as
 * NUL, TAB, CR and LF; DEL; C1) break lines and logs and hide in names; bidirectional and invisible
 * format characters can make an email address look like another one. One definition, used by the
 * server's validation and by the panel's.
 */
const CONTROL = /\p{Cc}/u
const BIDI_OR_FORMAT = /[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/

/** True when the text holds a C0 control (NUL, TAB, CR, LF, …), DEL or a C1 control. */
export const hasControlCharacter = (text: string): boolean => CONTROL.test(text)

/** True when the text holds a zero-width, bidirectional or byte-order-mark character. */
export const hasBidiOrFormatCharacter = (text: string): boolean => BIDI_OR_FORMAT.test(text)

/** The end of the message for a name or label refused for its control characters. */
export const CONTROL_CHARACTER_PROBLEM = 'must not contain line breaks or control characters'

/**
 * True when the text holds U+0000 (NUL). No id, name or value here needs one, and PostgreSQL
 * cannot store one in a text column, so it is refused wherever text comes in.
 */
export const hasNul = (text: string): boolean => text.includes('\u0000')

/**
 * Where the first U+0000 in a parsed JSON value is, object keys included: a path such as
 * `data.member.id` or `tags[2].name` ("" for the value itself), or null when there is none. Walks
 * with a list instead of recursion, so a deeply nested value cannot exhaust the stack.
 */
export function findNul(value: unknown): string | null {
  const pending: [unknown, string][] = [[value, '']]
  const join = (path: string, key: string) => (path === '' ? key : `${path}.${key}`)
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, path] = next
    if (typeof item === 'string') {
      if (hasNul(item)) return path
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) pending.push([item[i], `${path}[${i}]`])
    } else if (typeof item === 'object' && item !== null) {
      const entries = Object.entries(item)
      for (const [key] of entries) if (hasNul(key)) return join(path, key.replaceAll('\0', '\\u0000'))
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, inner] = entries[i] as [string, unknown]
        pending.push([inner, join(path, key)])
      }
    }
  }
  return null
}

/** True when any string in a parsed JSON value, object keys included, holds U+0000. */
export const holdsNul = (value: unknown): boolean => findNul(value) !== null
