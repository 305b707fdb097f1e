import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createRc4, nativeRc4Available, Rc4 } from './rc4.js'

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1')
const hex = (s: string): Buffer => Buffer.from(s, 'hex')

// OpenSSL 3 keeps RC4 in its legacy provider: a child Node with that provider loaded is the reference.
function nativeRc4InChild(key: Buffer, discard: number, data: Buffer): Buffer | undefined {
  const script = `
    const c = require('node:crypto').createCipheriv('rc4', Buffer.from(process.argv[1], 'hex'), null)
    c.update(Buffer.alloc(Number(process.argv[2])))
    const chunks = []
    process.stdin.on('data', (d) => chunks.push(c.update(d)))
    process.stdin.on('end', () => process.stdout.write(Buffer.concat(chunks).toString('hex')))`
  const result = spawnSync(
    process.execPath,
    ['--openssl-legacy-provider', '-e', script, key.toString('hex'), String(discard)],
    { input: data, encoding: 'utf8', timeout: 20_000 },
  )
  return result.status === 0 ? hex(result.stdout) : undefined
}

const legacyProviderWorks = nativeRc4InChild(ascii('Key'), 0, ascii('Plaintext')) !== undefined

describe('RC4', () => {
  it('matches known answers', () => {
    expect(new Rc4(ascii('Key')).update(ascii('Plaintext')).toString('hex')).toBe('bbf316e8d940af0ad3')
    expect(new Rc4(ascii('Wiki')).update(ascii('pedia')).toString('hex')).toBe('1021bf0420')
    expect(new Rc4(ascii('Secret')).update(ascii('Attack at dawn')).toString('hex')).toBe(
      '45a01f645fc35b383552544b9bf5',
    )
    // RFC 6229, 128-bit key 0x0102..10: keystream at offsets 0 and 1024.
    const key = hex('0102030405060708090a0b0c0d0e0f10')
    expect(new Rc4(key).update(Buffer.alloc(16)).toString('hex')).toBe('9ac7cc9a609d1ef7b2932899cde41b97')
    const skipped = new Rc4(key)
    skipped.discard(1024)
    expect(skipped.update(Buffer.alloc(16)).toString('hex')).toBe('bdf0324e6083dcc6d3cedd3ca8c53c16')
  })

  it('continues the keystream across calls of any size and leaves the input alone', () => {
    const key = randomBytes(20)
    const data = randomBytes(100_003)
    const whole = new Rc4(key).update(data)
    const pieces = new Rc4(key)
    const parts: Buffer[] = []
    for (let at = 0, size = 1; at < data.length; at += size, size = (size * 7 + 3) % 5000) {
      parts.push(pieces.update(data.subarray(at, at + size)))
    }
    expect(Buffer.concat(parts).equals(whole)).toBe(true)
    const copy = Buffer.from(data)
    new Rc4(key).update(data)
    expect(data.equals(copy)).toBe(true)
    // In place gives the same bytes.
    const inPlace = Buffer.from(data)
    new Rc4(key).process(inPlace)
    expect(inPlace.equals(whole)).toBe(true)
  })

  it('gives the same bytes whatever the alignment of input and output', () => {
    const key = randomBytes(16)
    const data = randomBytes(10_000)
    const reference = new Rc4(key).update(data)
    const backing = Buffer.alloc(20_016)
    for (const [inAt, outAt] of [
      [0, 0],
      [1, 1],
      [1, 2],
      [3, 0],
      [2, 6],
    ] as const) {
      const input = backing.subarray(inAt, inAt + data.length)
      data.copy(input)
      const output = new Uint8Array(new ArrayBuffer(10_008), outAt, data.length)
      new Rc4(key).process(input, output)
      expect(Buffer.from(output).equals(reference)).toBe(true)
      expect(new Rc4(key).update(input).equals(reference)).toBe(true)
    }
  })

  it.skipIf(!legacyProviderWorks)(
    'gives the same bytes as OpenSSL after dropping 1024 keystream bytes',
    () => {
      for (const keyLength of [1, 16, 20, 256]) {
        const key = randomBytes(keyLength)
        const data = randomBytes(70_000)
        const ours = createRc4(key, { discardBytes: 1024, native: false })
        const expected = nativeRc4InChild(key, 1024, data)
        expect(
          Buffer.concat([ours.update(data.subarray(0, 12_345)), ours.update(data.subarray(12_345))]),
        ).toEqual(expected)
      }
    },
  )

  it.skipIf(!nativeRc4Available())('uses OpenSSL in this process when it can, with the same output', () => {
    const key = randomBytes(20)
    const data = randomBytes(50_000)
    const native = createRc4(key, { discardBytes: 1024, native: true })
    const ours = createRc4(key, { discardBytes: 1024, native: false })
    expect(native.update(data)).toEqual(ours.update(data))
  })

  it('rejects empty and oversized keys', () => {
    expect(() => new Rc4(new Uint8Array(0))).toThrow(RangeError)
    expect(() => new Rc4(new Uint8Array(257))).toThrow(RangeError)
  })
})
