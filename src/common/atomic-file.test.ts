import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeFileAtomic } from './atomic-file.js'

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary file behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tribler-atomic-'))
    const path = join(dir, 'a.json')
    writeFileAtomic(path, 'one')
    writeFileAtomic(path, 'two')
    expect(readFileSync(path, 'utf8')).toBe('two')
    expect(readdirSync(dir)).toEqual(['a.json'])
  })

  it('keeps the old file when the write fails part-way', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tribler-atomic-'))
    const path = join(dir, 'a.json')
    writeFileAtomic(path, 'old')
    // a view whose length lies makes writeSync throw after the temporary file was created
    const broken = new Proxy(new Uint8Array(8), {
      get: (target, prop) => (prop === 'length' ? 1e12 : Reflect.get(target, prop)),
    })
    expect(() => writeFileAtomic(path, broken)).toThrow()
    expect(readFileSync(path, 'utf8')).toBe('old')
    expect(existsSync(`${path}.tmp-${process.pid}`)).toBe(false)
  })
})
