/** Small formatting helpers shared by components. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(date)
}

/** A day, e.g. "7 Dec 2026" (in the reader's own order). */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' }).format(date)
}

/** A delivery's time to the second: the time alone today, with the date otherwise. */
export function formatSeconds(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  const today = new Date(now).toDateString() === date.toDateString()
  return new Intl.DateTimeFormat(undefined, {
    ...(today ? {} : { dateStyle: 'medium' as const }),
    timeStyle: 'medium',
  }).format(date)
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago"; and "in 30 s" for times to come. */
export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return ''
  const at = new Date(iso).getTime()
  if (Number.isNaN(at)) return ''
  const seconds = Math.round((at - now) / 1000)
  const size = Math.abs(seconds)
  if (size < 1) return 'just now'
  const amount =
    size < 60
      ? `${size} s`
      : size < 3600
        ? `${Math.floor(size / 60)} min`
        : size < 86_400
          ? `${Math.floor(size / 3600)} h`
          : `${Math.floor(size / 86_400)} d`
  return seconds > 0 ? `in ${amount}` : `${amount} ago`
}

export const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`
