import { describe, expect, it } from 'vitest'
import type { BencodeErrorCode } from './index.js'
import { BencodeError, decode, encode, locate, rawValue } from './index.js'

const bytes = (text: string) => Buffer.from(text, 'latin1')

function codeOf(fn: () => unknown): BencodeErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof BencodeError) return err.code
    throw err
  }
  return undefined
}

describe('decode', () => {
  it('decodes integers, byte strings, lists and dictionaries', () => {
    expect(decode(bytes('i42e'))).toBe(42)
    expect(decode(bytes('i-7e'))).toBe(-7)
    expect(decode(bytes('i0e'))).toBe(0)
    expect(Buffer.from(decode(bytes('4:spam')) as Uint8Array).toString()).toBe('spam')
    expect((decode(bytes('0:')) as Uint8Array).length).toBe(0)
    const list = decode(bytes('li1ei2ee')) as unknown[]
    expect(list).toEqual([1, 2])
    const dict = decode(bytes('d3:bari1e3:fooli2eee')) as Record<string, unknown>
    expect(Object.keys(dict)).toEqual(['bar', 'foo'])
    expect(dict.foo).toEqual([2])
  })

  it('keeps byte strings binary, never turning them into text', () => {
    const raw = Buffer.from([0xff, 0x00, 0xfe, 0x80])
    const value = decode(Buffer.concat([bytes('4:'), raw])) as Uint8Array
    expect(value).toBeInstanceOf(Uint8Array)
    expect(Buffer.compare(Buffer.from(value), raw)).toBe(0)
  })

  it('decodes keys as binary strings, one character per byte', () => {
    const dict = decode(Buffer.concat([bytes('d2:'), Buffer.from([0xc3, 0xa9]), bytes('i1ee')])) as object
    expect(Object.keys(dict)).toEqual(['\u00c3\u00a9'])
  })

  it('decodes dictionaries with a null prototype so __proto__ is an ordinary key', () => {
    const dict = decode(bytes('d9:__proto__i1e11:constructori2ee'), { strict: false }) as Record<
      string,
      unknown
    >
    expect(Object.getPrototypeOf(dict)).toBeNull()
    expect(Object.getOwnPropertyDescriptor(dict, '__proto__')?.value).toBe(1)
    expect(dict.constructor).toBe(2)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('decodes integers beyond the safe range as bigint up to 64 bits', () => {
    expect(decode(bytes('i9007199254740991e'))).toBe(Number.MAX_SAFE_INTEGER)
    expect(decode(bytes('i9007199254740993e'))).toBe(9007199254740993n)
    expect(decode(bytes('i-9223372036854775808e'))).toBe(-(2n ** 63n))
    expect(codeOf(() => decode(bytes('i9223372036854775808e')))).toBe('INTEGER_OVERFLOW')
    expect(codeOf(() => decode(bytes(`i${'9'.repeat(5000)}e`)))).toBe('INTEGER_OVERFLOW')
  })

  it.each([
    ['i03e', 'INVALID_INTEGER'],
    ['i-0e', 'INVALID_INTEGER'],
    ['ie', 'INVALID_INTEGER'],
    ['i-e', 'INVALID_INTEGER'],
    ['i1.5e', 'INVALID_INTEGER'],
    ['i+1e', 'INVALID_INTEGER'],
    ['i12', 'UNEXPECTED_END'],
    ['', 'UNEXPECTED_END'],
    ['l', 'UNEXPECTED_END'],
    ['li1e', 'UNEXPECTED_END'],
    ['d3:foo', 'UNEXPECTED_END'],
    ['5:abc', 'UNEXPECTED_END'],
    ['99999999999999999999:x', 'UNEXPECTED_END'],
    ['03:abc', 'INVALID_LENGTH'],
    ['3abc', 'INVALID_LENGTH'],
    ['-3:abc', 'UNEXPECTED_BYTE'],
    ['x', 'UNEXPECTED_BYTE'],
    ['di1ei2ee', 'INVALID_KEY'],
    ['d3:fooi1e3:bari2ee', 'UNSORTED_KEYS'],
    ['d3:fooi1e3:fooi2ee', 'DUPLICATE_KEY'],
    ['i1ei2e', 'TRAILING_DATA'],
    ['4:spam\n', 'TRAILING_DATA'],
  ] as const)('rejects %j with %s', (input, code) => {
    expect(codeOf(() => decode(bytes(input)))).toBe(code)
  })

  it('reports the offset where decoding failed', () => {
    try {
      decode(bytes('d3:fooi1e3:bari03ee'))
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(BencodeError)
      expect((err as BencodeError).details.offset).toBe(9)
    }
  })

  it('accepts unsorted keys in lenient mode but still rejects duplicates', () => {
    const dict = decode(bytes('d3:fooi1e3:bari2ee'), { strict: false }) as Record<string, unknown>
    expect(dict).toEqual(Object.assign(Object.create(null), { foo: 1, bar: 2 }))
    expect(codeOf(() => decode(bytes('d1:bi1e1:ai2e1:bi3ee'), { strict: false }))).toBe('DUPLICATE_KEY')
  })

  it('orders keys by raw bytes, not by text', () => {
    expect(codeOf(() => decode(bytes('d1:ai1e1:Bi2ee')))).toBe('UNSORTED_KEYS')
    expect({ ...(decode(bytes('d1:Bi1e1:ai2ee')) as object) }).toEqual({ B: 1, a: 2 })
    const latin1 = decode(Buffer.concat([bytes('d1:zi1e1:'), Buffer.from([0xe9]), bytes('i2ee')])) as object
    expect(Object.entries(latin1)).toEqual([
      ['z', 1],
      ['\u00e9', 2],
    ])
  })

  it('enforces the depth limit', () => {
    const deep = (n: number) => bytes('l'.repeat(n) + 'e'.repeat(n))
    let value: unknown = decode(deep(100))
    let depth = 0
    while (Array.isArray(value)) {
      depth += 1
      value = value[0]
    }
    expect(depth).toBe(100)
    expect(codeOf(() => decode(deep(101)))).toBe('DEPTH_EXCEEDED')
    expect(codeOf(() => decode(deep(11), { maxDepth: 10 }))).toBe('DEPTH_EXCEEDED')
    expect(codeOf(() => decode(deep(100_000), { maxDepth: 1e9 }))).toBe('DEPTH_EXCEEDED')
  })

  it('enforces the item and size limits', () => {
    const many = bytes(`l${'i1e'.repeat(1000)}e`)
    expect(codeOf(() => decode(many, { maxItems: 500 }))).toBe('TOO_MANY_ITEMS')
    expect((decode(many, { maxItems: 1001 }) as unknown[]).length).toBe(1000)
    expect(codeOf(() => decode(many, { maxBytes: 100 }))).toBe('INPUT_TOO_LARGE')
  })

  it('allows trailing data only when asked', () => {
    expect(decode(bytes('i1ejunk'), { allowTrailing: true })).toBe(1)
  })

  it('returns views of the input rather than copies', () => {
    const input = bytes('4:spam')
    const value = decode(input) as Uint8Array
    expect(value.buffer).toBe(input.buffer)
  })
})

describe('encode', () => {
  it('encodes every type and sorts keys by bytes', () => {
    const out = encode({ z: 1, a: [1, 'x', new Uint8Array([0xff])], B: new Map([['k', -3n]]) })
    expect(out.toString('latin1')).toBe('d1:Bd1:ki-3ee1:ali1e1:x1:\u00ffe1:zi1ee')
  })

  it('writes string values as UTF-8 and leaves out undefined entries', () => {
    expect(encode({ name: 'é', skip: undefined }).toString('latin1')).toBe('d4:name2:\u00c3\u00a9e')
  })

  it('encodes -0 as i0e', () => {
    expect(encode(-0).toString()).toBe('i0e')
  })

  it.each([
    [1.5, 'INVALID_INTEGER'],
    [Number.NaN, 'INVALID_INTEGER'],
    [2 ** 60, 'INVALID_INTEGER'],
    [null, 'UNSUPPORTED_TYPE'],
    [true, 'UNSUPPORTED_TYPE'],
    [{ '\u0100': 1 }, 'INVALID_KEY'],
  ])('rejects %j with %s', (value, code) => {
    expect(codeOf(() => encode(value as never))).toBe(code)
  })

  it('rejects cyclic values instead of overflowing the stack', () => {
    const cycle: unknown[] = []
    cycle.push(cycle)
    expect(codeOf(() => encode(cycle as never))).toBe('DEPTH_EXCEEDED')
  })

  it('round-trips what it decodes, byte for byte', () => {
    const input = bytes('d4:infod6:lengthi-5e4:name3:\u00ff\u0000ae4:listl0:lee1:xi9223372036854775807ee')
    expect(Buffer.compare(encode(decode(input) as never), input)).toBe(0)
  })

  it('grows its buffer for large values', () => {
    const big = new Uint8Array(100_000).fill(7)
    const out = encode([big, big])
    expect(out.length).toBe(2 + 2 * (7 + 100_000))
    expect(Buffer.compare((decode(out) as Uint8Array[])[1]!, big)).toBe(0)
  })
})

describe('locate and rawValue', () => {
  const torrent = bytes('d8:announce3:url4:infod6:lengthi3e4:name1:xe4:listli1eli2ei3eeee')

  it('finds the exact bytes of a nested value', () => {
    expect(Buffer.from(rawValue(torrent, ['info'])!).toString('latin1')).toBe('d6:lengthi3e4:name1:xe')
    expect(Buffer.from(rawValue(torrent, ['info', 'name'])!).toString('latin1')).toBe('1:x')
    expect(Buffer.from(rawValue(torrent, ['list', 1, 0])!).toString('latin1')).toBe('i2e')
    expect(locate(torrent, [])).toEqual({ start: 0, end: torrent.length })
  })

  it('keeps the original bytes of an unsorted dictionary', () => {
    const input = bytes('d4:infod4:name1:x6:lengthi3eee')
    expect(codeOf(() => rawValue(input, ['info']))).toBe('UNSORTED_KEYS')
    expect(Buffer.from(rawValue(input, ['info'], { strict: false })!).toString('latin1')).toBe(
      'd4:name1:x6:lengthi3ee',
    )
  })

  it('returns undefined for a path that does not exist', () => {
    expect(locate(torrent, ['missing'])).toBeUndefined()
    expect(locate(torrent, ['list', 5])).toBeUndefined()
    expect(locate(torrent, ['announce', 'x'])).toBeUndefined()
    expect(locate(torrent, ['list', 'x'])).toBeUndefined()
  })

  it('rejects malformed input on the way', () => {
    expect(codeOf(() => locate(bytes('d4:infoi03ee'), ['zzz']))).toBe('INVALID_INTEGER')
    expect(codeOf(() => locate(bytes('d4:info'), ['info']))).toBe('UNEXPECTED_END')
  })
})
