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

/** The declarations of the rule whose selector reads exactly `selector` (the last one, as it wins). */
function declarations(selector: string): Record<string, string> {
  const source = SHEET.replace(/\/\*[\s\S]*?\*\//g, '')
  const rules = [...source.matchAll(/([^{}]+)\{([^{}]*)\}/g)].filter((m) => m[1]!.trim() === selector)
  const body = rules.at(-1)?.[2]
  if (body === undefined) throw new Error(`No rule ${selector}`)
  return Object.fromEntries(
    body
      .split(';')
      .map((d) => d.split(':').map((part) => part.trim()))
      .filter((d): d is [string, string] => d.length === 2 && d[0] !== ''),
  )
}

const THEMES = { light: ':root', dark: ":root[data-theme='dark']" } as const

/** A colour of the theme: a `var(--token)` resolved in the theme's root rule. */
function colour(value: string, theme: keyof typeof THEMES): string {
  const token = /^var\((--[\w-]+)\)$/.exec(value)?.[1]
  if (!token) throw new Error(`${value} is not one of the sheet's tokens`)
  const found = declarations(THEMES[theme])[token]
  if (!found) throw new Error(`No ${token} in the ${theme} theme`)
  return found
}

/** WCAG contrast ratio of two #rrggbb colours. */
function contrast(a: string, b: string): number {
  const luminance = (hex: string) => {
    const [r, g, bl] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
    })
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!
  }
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x)
  return (hi! + 0.05) / (lo! + 0.05)
}

describe('the colours of Kit’s side of a member in Activity', () => {
  it.each([
    ['.delivery .reason-warning', 'var(--warn)'],
    ['.delivery .reason-neutral', 'var(--muted)'],
    ['.member-kit-quiet', 'var(--warn)'],
  ])('%s reads at 4.5:1 or more in both themes, from the sheet’s tokens', (selector, expected) => {
    const rule = declarations(selector)
    expect(rule.color).toBe(expected)
    for (const theme of ['light', 'dark'] as const) {
      const ratio = contrast(colour(rule.color!, theme), colour(rule.background ?? 'var(--bg)', theme))
      expect(ratio, `${selector} in the ${theme} theme`).toBeGreaterThanOrEqual(4.5)
    }
  })
})
