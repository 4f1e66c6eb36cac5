/**
 * `npm run docs:config`: writes the configuration table of docs/configuration.md from the
 * declaration of every variable (server/config-schema.ts), between the two marker comments.
 * tests/config-schema.test.ts fails when the table there is not the one this writes.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { VARIABLES, type Declaration } from '../server/config-schema.ts'

export const CONFIG_DOC = fileURLToPath(new URL('../docs/configuration.md', import.meta.url))
const BEGIN = '<!-- configuration table: written by `npm run docs:config` from server/config-schema.ts -->'
const END = '<!-- end of configuration table -->'

const cell = (text: string) => text.replaceAll('|', '\\|')

function shownValue(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value)
}

function defaultOf(declared: Declaration): string {
  const aside = declared.aside ? ` (${declared.aside})` : ''
  const shown = declared.shown ?? (declared.default === undefined ? 'unset' : `\`${shownValue(declared.default)}\`${aside}`)
  return declared.production?.required ? `${shown}; **required in production**` : shown
}

/** The meaning, then what a value must be: the words a refusal uses. */
function meaningOf(declared: Declaration): string {
  if (declared.type === 'integer') {
    const range = declared.maximum === undefined ? `≥ ${declared.minimum}` : `from ${declared.minimum} to ${declared.maximum}`
    return `${declared.meaning}; must be an integer ${range}`
  }
  if (declared.expected) return `${declared.meaning}; must be ${declared.expected}`
  if (declared.enum) return `${declared.meaning}; must be one of ${declared.enum.map((v) => `\`${v}\``).join(', ')}`
  return declared.meaning
}

/** The table, one row per variable in the declaration's order. */
export function configTable(): string {
  const rows = Object.entries(VARIABLES as Record<string, Declaration>).map(
    ([name, declared]) =>
      `| \`${name}\`${declared.secret ? ' (secret)' : ''} | ${cell(defaultOf(declared))} | ${cell(meaningOf(declared))} |`,
  )
  return ['| variable | default (development) | meaning |', '|---|---|---|', ...rows].join('\n')
}

/** `doc` with the text between the markers replaced by the table. */
export function withConfigTable(doc: string): string {
  const begin = doc.indexOf(BEGIN)
  const end = doc.indexOf(END)
  if (begin === -1 || end < begin)
    throw new Error(`docs/configuration.md needs the two markers around its configuration table:\n${BEGIN}\n${END}`)
  return `${doc.slice(0, begin + BEGIN.length)}\n${configTable()}\n${doc.slice(end)}`
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const doc = readFileSync(CONFIG_DOC, 'utf8')
  const next = withConfigTable(doc)
  if (next === doc) console.log('docs/configuration.md: the configuration table is up to date')
  else {
    writeFileSync(CONFIG_DOC, next)
    console.log('docs/configuration.md: configuration table written')
  }
}
