import { describe, expect, it } from 'vitest'
import { JsonLineSplitter } from './lines.js'

describe('JsonLineSplitter', () => {
  it('keeps a partial line until its newline arrives', () => {
    const split = new JsonLineSplitter()
    expect(split.push('{"type":"events_start"}\n{"type":"tri')).toEqual([{ type: 'events_start' }])
    expect(split.push('bler_started"}\n')).toEqual([{ type: 'tribler_started' }])
  })

  it('skips blank lines and reports lines that are not JSON objects', () => {
    const bad: string[] = []
    const split = new JsonLineSplitter((line) => bad.push(line))
    expect(split.push('\n[1]\nnot json\n{"type":"x"}\n')).toEqual([{ type: 'x' }])
    expect(bad).toEqual(['[1]', 'not json'])
  })
})
