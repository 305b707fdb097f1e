import { describe, expect, it } from 'vitest'
import { seededRandom as prng } from '../net/index.js'
import type { Encodable } from './index.js'
import { BencodeError, decode, encode, locate } from './index.js'

function randomValue(rand: () => number, depth: number): Encodable {
  const kind = Math.floor(rand() * (depth > 4 ? 2 : 4))
  if (kind === 0) return Math.floor((rand() - 0.5) * 2 ** 40)
  if (kind === 1) return new Uint8Array(Math.floor(rand() * 12)).map(() => Math.floor(rand() * 256))
  const size = Math.floor(rand() * 5)
  if (kind === 2) return Array.from({ length: size }, () => randomValue(rand, depth + 1))
  const dict: Record<string, Encodable> = {}
  for (let i = 0; i < size; i++) {
    const key = String.fromCharCode(...Array.from({ length: 1 + Math.floor(rand() * 4) }, () => rand() * 256))
    dict[key] = randomValue(rand, depth + 1)
  }
  return dict
}

function expectOnlyBencodeErrors(fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BencodeError)
  }
}

describe('bencode fuzzing', () => {
  it('round-trips random values', () => {
    const rand = prng(1)
    for (let i = 0; i < 2000; i++) {
      const encoded = encode(randomValue(rand, 0))
      expect(Buffer.compare(encode(decode(encoded) as Encodable), encoded)).toBe(0)
    }
  })

  it('throws nothing but BencodeError on mutated input', () => {
    const rand = prng(2)
    const alphabet = Buffer.from('0123456789:ilde-ex')
    for (let i = 0; i < 5000; i++) {
      const input = Buffer.from(encode(randomValue(rand, 0)))
      const mutations = 1 + Math.floor(rand() * 3)
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(rand() * input.length)
        input[at] = rand() < 0.7 ? alphabet[Math.floor(rand() * alphabet.length)]! : Math.floor(rand() * 256)
      }
      const cut = rand() < 0.3 ? input.subarray(0, Math.floor(rand() * input.length)) : input
      expectOnlyBencodeErrors(() => decode(cut))
      expectOnlyBencodeErrors(() => decode(cut, { strict: false }))
      expectOnlyBencodeErrors(() => locate(cut, ['a', 0]))
    }
  })

  it('throws nothing but BencodeError on random bytes', () => {
    const rand = prng(3)
    for (let i = 0; i < 5000; i++) {
      const input = Buffer.from(
        Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)),
      )
      expectOnlyBencodeErrors(() => decode(input))
    }
  })
})
