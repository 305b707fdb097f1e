import { describe, expect, it } from 'vitest'
import { Bitfield } from './index.js'

describe('Bitfield', () => {
  it('puts piece 0 in the high bit of the first byte', () => {
    const field = new Bitfield(10)
    field.set(0)
    field.set(9)
    expect([...field.bytes]).toEqual([0x80, 0x40])
    expect([...field]).toEqual([0, 9])
    expect(field.count).toBe(2)
  })

  it('reads a peer bitfield and rejects wrong lengths and spare bits', () => {
    expect([...Bitfield.fromBytes(Uint8Array.of(0xa0, 0x40), 10)!]).toEqual([0, 2, 9])
    expect(Bitfield.fromBytes(Uint8Array.of(0xff), 10)).toBeUndefined()
    expect(Bitfield.fromBytes(Uint8Array.of(0xff, 0x20), 10)).toBeUndefined()
  })

  it('counts sets and clears once', () => {
    const field = Bitfield.full(9)
    expect(field.count).toBe(9)
    expect(field.clear(3)).toBe(true)
    expect(field.clear(3)).toBe(false)
    expect(field.set(9)).toBe(false)
    expect(field.count).toBe(8)
  })
})
