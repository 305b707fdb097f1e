import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SCHEMA } from './schema.js'

describe('docs/configuration.md', () => {
  it('documents every setting with its type and default', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
    const rows = new Map<string, string[]>()
    for (const line of doc.split('\n')) {
      const cells = line.split('|').map((cell) => cell.trim())
      if (cells.length >= 6) rows.set(`${cells[1]}.${cells[2]}`, cells.slice(3))
    }
    for (const [section, keys] of Object.entries(SCHEMA)) {
      for (const [key, spec] of Object.entries(keys)) {
        const row = rows.get(`${section}.${key}`)
        expect(row, `${section}.${key}`).toBeDefined()
        expect(row?.[0], `${section}.${key}`).toContain(spec.type)
        expect(row?.[1], `${section}.${key}`).toBe(`\`${JSON.stringify(spec.default)}\``)
      }
    }
  })
})
