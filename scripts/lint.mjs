// `npm run lint [paths…]`: ESLint (no warnings allowed), then Prettier's check, over the paths given
// or, without any, over all the code. `npm run format [paths…]` rewrites the same files with Prettier.
// Paths let a large change be cleaned one folder at a time, e.g. `npm run lint -- server/routes ui`.
import { spawnSync } from 'node:child_process'

const ALL = ['server', 'shared', 'ui', 'tests', 'scripts', 'bench', 'drill', '*.ts', '*.mjs', '*.json']

const args = process.argv.slice(2)
const write = args[0] === '--write'
const given = write ? args.slice(1) : args
const paths = given.length > 0 ? given : ALL

function run(bin, argv) {
  const result = spawnSync(`node_modules/.bin/${bin}`, argv, { stdio: 'inherit' })
  if (result.error) throw result.error
  return result.status ?? 1
}

if (write) {
  process.exitCode = run('prettier', ['--write', '--log-level', 'warn', ...paths])
} else {
  // Cached in node_modules/.cache: a second run reads only what changed. A fresh clone (CI) has no
  // cache, and a type-aware finding in a file that did not change but whose imports did can wait
  // for the next change to it or for a fresh run.
  const cache = ['--cache', '--cache-location', 'node_modules/.cache/eslint/']
  const eslint = run('eslint', [...cache, '--max-warnings', '0', '--no-warn-ignored', '--no-error-on-unmatched-pattern', ...paths])
  const prettier = run('prettier', ['--check', '--cache', '--log-level', 'warn', ...paths])
  process.exitCode = eslint || prettier
}
