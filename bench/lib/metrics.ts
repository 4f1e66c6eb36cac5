/** Reading one counter from a server's /metrics (Prometheus text), by the value of one label. */
import { METRICS_TOKEN } from './server.ts'

/** `kit_bus_messages_total{outcome="accepted"} 12` → { accepted: 12 }; an empty record when the server does not answer. */
export async function scrapeCounter(baseUrl: string, name: string, label: string): Promise<Record<string, number>> {
  const text = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }).then(
    (r) => (r.ok ? r.text() : ''),
    () => '',
  )
  const counts: Record<string, number> = {}
  const line = new RegExp(`^${name}\\{([^}]*)\\}\\s+([0-9.eE+-]+)$`)
  for (const row of text.split('\n')) {
    const match = line.exec(row.trim())
    if (!match) continue
    const value = new RegExp(`${label}="([^"]*)"`).exec(match[1] ?? '')?.[1]
    if (value !== undefined) counts[value] = (counts[value] ?? 0) + Number(match[2])
  }
  return counts
}

/** The counters of several servers added up. */
export async function scrapeCounters(baseUrls: string[], name: string, label: string): Promise<Record<string, number>> {
  const total: Record<string, number> = {}
  for (const counts of await Promise.all(baseUrls.map((u) => scrapeCounter(u, name, label)))) {
    for (const [key, n] of Object.entries(counts)) total[key] = (total[key] ?? 0) + n
  }
  return total
}
