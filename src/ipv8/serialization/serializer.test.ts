import { isIPv4 } from 'node:net'
import { describe, expect, it } from 'vitest'
import { loadVectors } from '../testing/vectors.js'
import {
  FORMATS,
  type Format,
  ipv4Number,
  isFormatCode,
  nested,
  nestedList,
  payload,
  Reader,
  struct,
  Writer,
} from './index.js'

interface Case {
  format: string
  input: unknown[]
  packed: string
  unpacked: unknown[]
}

const cases = loadVectors<{ cases: Case[] }>('serializer').cases

const GlobalTime = struct({ globalTime: 'Q' }, 'GlobalTimeDistributionPayload')
const IntroductionInfo = struct(
  { address: 'ip_address', key: 'varlenH', seederPk: 'varlenH', source: 'B' },
  'IntroductionInfo',
)

type Json = { hex?: string; host?: string; port?: number; payload_class?: string } & Record<string, unknown>

// Converts a py-ipv8 vector value into the value our format takes; `wide` marks 64-bit integer positions.
function convert(value: unknown, wide = false): unknown {
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === 'string' &&
    typeof value[1] === 'number'
  ) {
    return { host: value[0], port: value[1] }
  }
  if (Array.isArray(value)) return value.map((item) => convert(item, wide))
  if (typeof value === 'number') return wide ? BigInt(value) : value
  if (typeof value === 'object' && value !== null) {
    const json = value as Json
    if (json.hex !== undefined) return Buffer.from(json.hex, 'hex')
    if (json.address_type !== undefined) return { host: json.host, port: json.port }
  }
  return value
}

const WIDE_POSITIONS: Record<string, boolean[]> = {
  QH: [true, false],
  QL: [true, false],
  QQHHBH: [true, true, false, false, false, false],
}

function formatAndValue(c: Case, gtValues: bigint[]): [Format<unknown>, unknown] {
  if (c.format === 'payload') {
    const input = c.input[0] as Json
    if (input.payload_class === 'IntroductionInfo') {
      return [
        nested(IntroductionInfo) as Format<unknown>,
        {
          address: convert(input.address),
          key: convert(input.key),
          seederPk: convert(input.seeder_pk),
          source: input.source,
        },
      ]
    }
    return [nested(GlobalTime) as Format<unknown>, { globalTime: gtValues[0] }]
  }
  if (c.format === 'payload-list') {
    return [nestedList(GlobalTime) as Format<unknown>, gtValues.map((globalTime) => ({ globalTime }))]
  }
  const code = c.format.startsWith('flags') ? 'flags' : c.format
  if (!isFormatCode(code)) throw new Error(`unknown format in vectors: ${c.format}`)
  const format = FORMATS[code] as Format<unknown>
  if (code === 'bits') return [format, c.input.map((bit) => bit === 1)]
  if (code === 'arrayH-q') return [format, convert(c.input[0], true)]
  const wide = WIDE_POSITIONS[code]
  if (wide !== undefined) return [format, c.input.map((item, i) => convert(item, wide[i]))]
  if (c.input.length > 1) return [format, c.input.map((item) => convert(item))]
  return [format, convert(c.input[0], code === 'q' || code === 'Q')]
}

function globalTimesOf(c: Case): bigint[] {
  // The GlobalTimeDistributionPayload vectors name only the class; their values are in the packed bytes.
  if (c.format === 'payload') return [BigInt(`0x${c.packed.slice(4)}`)]
  if (c.format === 'payload-list') return [1n, 2n]
  return []
}

describe('serializer formats against py-ipv8', () => {
  for (const c of cases) {
    const label = `${c.format} ${c.packed.slice(0, 24)}`
    it(`packs and unpacks ${label} byte for byte`, () => {
      const [format, value] = formatAndValue(c, globalTimesOf(c))
      const w = new Writer(4)
      format.write(w, value)
      expect(w.toBuffer().toString('hex')).toBe(c.packed)
      const packed = Buffer.from(c.packed, 'hex')
      const r = new Reader(packed)
      const decoded = format.read(r)
      expect(r.remaining).toBe(0)
      expect(decoded).toEqual(value)
    })
  }

  it('has a py-ipv8 vector for every format code', () => {
    const covered = new Set(cases.map((c) => (c.format.startsWith('flags') ? 'flags' : c.format)))
    expect(Object.keys(FORMATS).filter((code) => !covered.has(code))).toEqual([])
  })
})

describe('payload schemas', () => {
  const Example = payload(9, {
    identifier: 'H',
    address: 'ip_address',
    name: 'varlenHutf8',
    flag: '?',
    time: 'Q',
    rest: 'raw',
  })

  it('round-trips a declared payload', () => {
    const value = {
      identifier: 7,
      address: { host: '::ffff:1.2.3.4', port: 1 },
      name: 'naïve',
      flag: true,
      time: 2n ** 63n,
      rest: Buffer.from('tail'),
    }
    // An IPv4-mapped address decodes as inet_ntop (and so py-ipv8) writes it.
    expect(Example.decode(Example.encode(value))).toEqual(value)
    expect(Example.msgId).toBe(9)
  })

  it('rejects truncated input, trailing bytes and bad lengths with codes', () => {
    const Fixed = struct({ a: 'H', b: 'varlenH' })
    expect(() => Fixed.decode(Buffer.from('00', 'hex'))).toThrow(
      expect.objectContaining({ code: 'TRUNCATED' }),
    )
    expect(() => Fixed.decode(Buffer.from('0001000161ff', 'hex'))).toThrow(
      expect.objectContaining({ code: 'TRAILING_BYTES' }),
    )
    expect(() => Fixed.decode(Buffer.from('00010009', 'hex'))).toThrow(
      expect.objectContaining({ code: 'BAD_VARLEN' }),
    )
    const Addr = struct({ a: 'ip_address' })
    expect(() => Addr.decode(Buffer.from('020001610001', 'hex'))).toThrow(
      expect.objectContaining({ code: 'BAD_ADDRESS' }),
    )
    const Text = struct({ t: 'varlenHutf8' })
    expect(() => Text.decode(Buffer.from('0001ff', 'hex'))).toThrow(
      expect.objectContaining({ code: 'BAD_UTF8' }),
    )
  })

  it('refuses values that do not fit their format', () => {
    const Small = struct({ a: 'B', b: '20s' })
    expect(() => Small.encode({ a: 256, b: Buffer.alloc(1) })).toThrow(
      expect.objectContaining({ code: 'BAD_VALUE' }),
    )
    expect(() => Small.encode({ a: 1, b: Buffer.alloc(21) })).toThrow(
      expect.objectContaining({ code: 'BAD_VALUE' }),
    )
    expect(Small.encode({ a: 1, b: Buffer.from([7]) }).toString('hex')).toBe(`0107${'00'.repeat(19)}`)
    const Ipv4 = struct({ a: 'ipv4' })
    expect(() => Ipv4.encode({ a: { host: '::1', port: 1 } })).toThrow(
      expect.objectContaining({ code: 'BAD_ADDRESS' }),
    )
  })

  it('parses dotted quads exactly as strictly as net.isIPv4', () => {
    expect(ipv4Number('1.2.3.4')).toBe(0x01020304)
    expect(ipv4Number('255.255.255.255')).toBe(0xffffffff)
    expect(ipv4Number('0.0.0.0')).toBe(0)
    const fixed = [
      '01.2.3.4',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1..2.3',
      '.1.2.3',
      '1.2.3.',
      ' 1.2.3.4',
      '::1',
      '',
    ]
    for (const host of fixed) expect(ipv4Number(host)).toBe(-1)
    let seed = 777
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const alphabet = '0123456789..a:'
    let valid = 0
    for (let i = 0; i < 20_000; i++) {
      const host =
        i % 2 === 0
          ? Array.from({ length: 4 }, () => String(random(300))).join('.')
          : Array.from({ length: 7 + random(9) }, () => alphabet[random(alphabet.length)]).join('')
      const parsed = ipv4Number(host)
      expect(parsed >= 0, host).toBe(isIPv4(host))
      if (parsed >= 0) {
        valid += 1
        expect(host.split('.').map(Number)).toEqual([
          parsed >>> 24,
          (parsed >>> 16) & 255,
          (parsed >>> 8) & 255,
          parsed & 255,
        ])
      }
    }
    expect(valid).toBeGreaterThan(1000)
  })

  it('refuses a schema with an unknown format or a greedy field that is not last', () => {
    expect(() => struct({ a: 'Z' as 'B' })).toThrow(expect.objectContaining({ code: 'UNKNOWN_FORMAT' }))
    expect(() => struct({ a: 'raw', b: 'H' })).toThrow(expect.objectContaining({ code: 'UNKNOWN_FORMAT' }))
  })

  it('never throws anything but Ipv8Error on random input', () => {
    let seed = 12345
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed / 0x80000000
    }
    const schemas = [
      Example,
      struct({ list: 'varlenH-list', arr: 'arrayH-q', d: 'arrayH-d', addr: 'address', x: 'varlenHx20' }),
      struct({
        n: nestedList(struct({ a: 'ipv4', b: 'bits', c: 'flags' })),
        m: 'varlenBx2',
        u: 'varlenIutf8',
      }),
    ]
    for (let i = 0; i < 3000; i++) {
      const data = Buffer.alloc(Math.floor(random() * 64))
      for (let j = 0; j < data.length; j++) data[j] = Math.floor(random() * 256)
      for (const schema of schemas) {
        try {
          schema.decode(data)
        } catch (err) {
          expect((err as { name: string }).name).toBe('Ipv8Error')
        }
      }
    }
  })
})
