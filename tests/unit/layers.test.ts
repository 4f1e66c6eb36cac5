import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * The server's layers, lowest first: `core` imports only `shared` and node built-ins; `storage`
 * and `pipeline` stand side by side on it; `kit` sits beside them; services, plugins and routes
 * are above. An import from a layer to one the rules forbid runs back up.
 */
const FORBIDDEN: Record<string, readonly string[]> = {
  storage: ['pipeline', 'services', 'plugins', 'routes'],
  pipeline: ['services', 'plugins', 'routes'],
  kit: ['storage', 'services', 'pipeline'],
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"();=]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : []
  })
}

const layerOf = (serverDir: string, file: string): string => relative(serverDir, file).split(sep)[0] ?? ''

/** Every import under `serverDir` that runs back up a layer, as `file → specifier`. */
export function upwardImports(serverDir: string): string[] {
  const found: string[] = []
  for (const file of sourceFiles(serverDir)) {
    const layer = layerOf(serverDir, file)
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? match[3] ?? ''
      const where = `${relative(serverDir, file)} → ${specifier}`
      if (layer === 'core') {
        if (!specifier.startsWith('#shared/') && !specifier.startsWith('node:') && !specifier.startsWith('./')) found.push(where)
        else if (specifier.startsWith('./') && layerOf(serverDir, resolve(dirname(file), specifier)) !== 'core') found.push(where)
        continue
      }
      const forbidden = FORBIDDEN[layer]
      if (!forbidden || !specifier.startsWith('.')) continue
      if (forbidden.includes(layerOf(serverDir, resolve(dirname(file), specifier)))) found.push(where)
    }
  }
  return found
}

describe('server layers', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'layers-'))
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))

  const tree = (files: Record<string, string>): string => {
    const root = mkdtempSync(join(scratch, 'server-'))
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true })
      writeFileSync(join(root, path), text)
    }
    return root
  }

  it('finds no import running back up a layer in server/', () => {
    expect(upwardImports(resolve(import.meta.dirname, '../../server'))).toEqual([])
  })

  it('reports each kind of upward import, including multi-line and re-exports', () => {
    const root = tree({
      'core/a.ts':
        "import { x } from '../pipeline/b.ts'\nimport { y } from 'fastify'\nimport { z } from '#shared/api.ts'\nimport { w } from './c.ts'\n",
      'core/c.ts': "import { randomUUID } from 'node:crypto'\n",
      'storage/sqlite/q.ts': "import {\n  takeTurns,\n} from '../../pipeline/fairness.ts'\nimport type { T } from '../../core/queue.ts'\n",
      'pipeline/p.ts':
        "export { R } from '../services/connections.ts'\nimport type { M } from '../plugins/metrics.ts'\nimport { K } from '../kit/client.ts'\n",
      'kit/budget.ts': "import type { L } from '../storage/types.ts'\nimport { E } from './errors.ts'\n",
      'services/s.ts': "import { P } from '../pipeline/p.ts'\n",
    })
    expect(upwardImports(root).sort()).toEqual([
      'core/a.ts → ../pipeline/b.ts',
      'core/a.ts → fastify',
      'kit/budget.ts → ../storage/types.ts',
      'pipeline/p.ts → ../plugins/metrics.ts',
      'pipeline/p.ts → ../services/connections.ts',
      'storage/sqlite/q.ts → ../../pipeline/fairness.ts',
    ])
  })
})
