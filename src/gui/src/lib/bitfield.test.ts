import { describe, expect, it } from 'vitest'
import { decodeBitfield, pieceBuckets } from './bitfield.js'

describe('decodeBitfield', () => {
  it('reads bits most significant first', () => {
    // 0xa0 = 1010 0000
    expect(decodeBitfield(btoa('\xa0'), 4)).toEqual([true, false, true, false])
  })

  it('spans several bytes and stops at the piece count', () => {
    expect(decodeBitfield(btoa('\xff\x80'), 9)).toEqual(new Array(9).fill(true))
  })

  it('counts bits beyond the data, and undecodable data, as missing', () => {
    expect(decodeBitfield(btoa('\xff'), 10).slice(8)).toEqual([false, false])
    expect(decodeBitfield('not base64!', 3)).toEqual([false, false, false])
  })
})

describe('pieceBuckets', () => {
  it('folds pieces into fractions per column', () => {
    expect(pieceBuckets([true, true, false, false], 2)).toEqual([1, 0])
    expect(pieceBuckets([true, false, true, false], 2)).toEqual([0.5, 0.5])
  })

  it('stretches few pieces over many columns', () => {
    expect(pieceBuckets([true, false], 4)).toEqual([1, 1, 0, 0])
  })
})
