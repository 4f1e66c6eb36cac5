// @vitest-environment node
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const SHEET = readFileSync(new URL('../../ui/src/styles.css', import.meta.url), 'utf8')

/**
 * The panel's style sheet as a tree of blocks: each style rule's selector with the selectors of the
 * blocks it sits in. Browsers read a rule left open as the parent of everything after it (CSS
 * nesting), so a missing `}` silently turns `.savebar-floating` into `.facts .savebar-floating`.
 */
function blocks(css: string): { selector: string; parents: string[] }[] {
  const source = css.replace(/\/\*[\s\S]*?\*\//g, '').replace(/'[^']*'|"[^"]*"/g, '""')
  const found: { selector: string; parents: string[] }[] = []
  const open: string[] = []
  let start = 0
  for (let i = 0; i < source.length; i++) {
    const c = source[i]
    if (c === '{') {
      const selector = source.slice(start, i).split(';').pop()!.trim()
      found.push({ selector, parents: [...open] })
      open.push(selector)
      start = i + 1
    } else if (c === '}') {
      if (open.length === 0) throw new Error(`An unmatched } at character ${i}`)
      open.pop()
      start = i + 1
    } else if (c === ';') {
      start = i + 1
    }
  }
  if (open.length > 0) throw new Error(`Blocks left open at the end: ${open.join(' > ')}`)
  return found
}

describe('the panel style sheet', () => {
  it('closes every block and nests style rules only inside at-rules', () => {
    const nested = blocks(SHEET).filter((b) => b.parents.some((p) => !p.startsWith('@')))
    expect(nested.map((b) => `${b.parents.join(' > ')} > ${b.selector}`)).toEqual([])
  })

  it('keeps the mapping editor’s floating save bar and its sentinels as top-level rules', () => {
    const topLevel = blocks(SHEET)
      .filter((b) => b.parents.length === 0)
      .map((b) => b.selector)
    expect(topLevel).toEqual(expect.arrayContaining(['.mappings-form', '.sentinels', '.sentinel', '.savebar-floating']))
  })
})
