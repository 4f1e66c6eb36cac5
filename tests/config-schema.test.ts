/** The declaration of every environment variable, and what comes from it: refusals and the table in docs/configuration.md. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../server/config.ts'
import { VARIABLES, type Declaration } from '../server/config-schema.ts'
import { CONFIG_DOC, configTable, withConfigTable } from '../scripts/config-docs.ts'
import { problemsOf, productionEnv, tempDb } from './helpers/config.ts'

const declared = Object.entries(VARIABLES as Record<string, Declaration>)
/** Those whose schema refuses some values: a number, a choice, a pattern or a check. */
const constrained = declared.filter(([, d]) => d.type === 'integer' || d.enum || d.pattern || '~refine' in d).map(([name]) => name)

describe('the declaration of the environment variables', () => {
  it('refuses a malformed value of every constrained variable, naming it and saying what it must be, without repeating the value', () => {
    expect(constrained.length).toBeGreaterThan(30)
    for (const name of constrained) {
      const problems = problemsOf({ DATABASE_PATH: tempDb(), [name]: 'not valid' })
      expect(problems, name).toEqual([expect.stringMatching(new RegExp(`^${name} must be \\S`))])
      expect(problems[0], name).not.toContain('not valid')
    }
  })

  it('takes the default of a variable set to an empty string', () => {
    const { config } = loadConfig({ DATABASE_PATH: tempDb(), PORT: '', LOG_LEVEL: '', EVENT_BUS_URL: '  ', DATABASE_URL: ' ' })
    expect([config.port, config.logLevel, config.eventBus, config.databaseUrl]).toEqual([8787, 'info', null, null])
  })

  it('refuses an issuer that is not an origin when APPSTATION_ORIGIN, which defaults to it, is not set', () => {
    const issuer = 'https://appstation.example/tokens'
    expect(problemsOf({ ...productionEnv(), APPSTATION_ISSUER: issuer })).toEqual([
      expect.stringMatching(/^APPSTATION_ORIGIN must be set to an origin/),
    ])
    expect(
      loadConfig({ ...productionEnv(), APPSTATION_ISSUER: issuer, APPSTATION_ORIGIN: 'https://appstation.example' }).config.issuer,
    ).toBe(issuer)
  })
})

describe('the configuration table of docs/configuration.md', () => {
  it('is the one `npm run docs:config` writes from the declaration', () => {
    const doc = readFileSync(CONFIG_DOC, 'utf8')
    expect(withConfigTable(doc), 'run `npm run docs:config`').toBe(doc)
  })

  it('has one row per variable, with its default and what it must be', () => {
    const rows = configTable().split('\n').slice(2)
    expect(rows.map((row) => /^\| `([A-Z_]+)`/.exec(row)?.[1])).toEqual(declared.map(([name]) => name))
    expect(rows.find((row) => row.startsWith('| `SYNC_MAX_ROWS`'))).toBe(
      '| `SYNC_MAX_ROWS` | `100000` | most members in one sync; more get 413; must be an integer from 1 to 1000000 |',
    )
    expect(rows.find((row) => row.startsWith('| `METRICS_TOKEN`'))).toMatch(
      /^\| `METRICS_TOKEN` \(secret\) \| unset \(open\); \*\*required in production\*\* \|/,
    )
  })

  it('is written between the two markers, replacing what was there', () => {
    const [begin, end] = readFileSync(CONFIG_DOC, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('<!-- ') && line.includes('configuration table'))
    const stale = `intro\n${begin}\n| variable | default | meaning |\n| \`PORT\` | \`80\` | old |\n${end}\noutro\n`
    expect(withConfigTable(stale)).toBe(`intro\n${begin}\n${configTable()}\n${end}\noutro\n`)
    expect(() => withConfigTable('no markers here')).toThrow(/markers/)
  })
})
