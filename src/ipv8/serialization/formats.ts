import type { SocketAddress } from '../../net/index.js'
import { Ipv8Error } from '../errors.js'
import {
  decodeUtf8,
  readIpv4Address,
  readTypedAddress,
  writeIpv4Address,
  writeTypedAddress,
} from './address.js'
import type { Reader, Writer } from './buffer.js'

/**
 * How one field goes on the wire: py-ipv8's format codes are instances of this, and nested payloads
 * ({@link nested}, {@link nestedList}) too.
 */
export interface Format<T> {
  /** The py-ipv8 name of the format, for errors and debugging. */
  readonly name: string
  /** Whether the format takes all remaining bytes (only allowed as the last field). */
  readonly greedy?: boolean
  write(w: Writer, value: T): void
  read(r: Reader): T
}

/** The 8 booleans of a `bits` byte, the first being the most significant bit. */
export type Bits = readonly boolean[]

/** The value type of each py-ipv8 format code. */
export interface FormatTypes {
  '?': boolean
  B: number
  H: number
  I: number
  l: number
  f: number
  d: number
  q: bigint
  Q: bigint
  c: Buffer
  BBH: [number, number, number]
  BH: [number, number]
  HH: [number, number]
  LL: [number, number]
  QH: [bigint, number]
  QL: [bigint, number]
  QQHHBH: [bigint, bigint, number, number, number, number]
  ccB: [Buffer, Buffer, number]
  c20s: [Buffer, Buffer]
  '4SH': [Buffer, number]
  '20s': Buffer
  '32s': Buffer
  '64s': Buffer
  '74s': Buffer
  bits: Bits
  ipv4: SocketAddress
  ip_address: SocketAddress
  address: SocketAddress
  raw: Buffer
  varlenH: Buffer
  varlenI: Buffer
  varlenHutf8: string
  varlenIutf8: string
  varlenBx2: Buffer
  varlenHx20: Buffer
  doublevarlenH: Buffer
  'varlenH-list': Buffer[]
  'arrayH-?': boolean[]
  'arrayH-q': bigint[]
  'arrayH-d': number[]
  flags: number[]
}

/** A py-ipv8 format code. */
export type FormatCode = keyof FormatTypes

function checkBytes(value: unknown, format: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new Ipv8Error('BAD_VALUE', { format, reason: 'expected bytes' })
  return value
}

function fixed(n: number): Format<Buffer> {
  return {
    name: `${n}s`,
    // struct pads short values with zero bytes on the right and refuses long ones
    write(w, value) {
      const bytes = checkBytes(value, `${n}s`)
      if (bytes.length > n) throw new Ipv8Error('BAD_VALUE', { format: `${n}s`, length: bytes.length })
      const at = w.reserve(n)
      w.buffer.set(bytes, at)
      w.buffer.fill(0, at + bytes.length, at + n)
    },
    read: (r) => r.bytes(n),
  }
}

function varlen(name: string, lengthBytes: 1 | 2 | 4, unit = 1): Format<Buffer> {
  const max = lengthBytes === 1 ? 0xff : lengthBytes === 2 ? 0xffff : 0xffffffff
  return {
    name,
    write(w, value) {
      const bytes = checkBytes(value, name)
      if (bytes.length % unit !== 0 || bytes.length / unit > max) {
        throw new Ipv8Error('BAD_VARLEN', { format: name, length: bytes.length })
      }
      const count = bytes.length / unit
      if (lengthBytes === 1) w.u8(count)
      else if (lengthBytes === 2) w.u16(count)
      else w.u32(count)
      w.bytes(bytes)
    },
    read(r) {
      const count = lengthBytes === 1 ? r.u8() : lengthBytes === 2 ? r.u16() : r.u32()
      const length = count * unit
      if (length > r.remaining) {
        throw new Ipv8Error('BAD_VARLEN', { format: name, length, remaining: r.remaining, offset: r.offset })
      }
      return r.bytes(length)
    },
  }
}

function utf8(name: string, lengthBytes: 2 | 4): Format<string> {
  const inner = varlen(name, lengthBytes)
  return {
    name,
    write(w, value) {
      if (typeof value !== 'string')
        throw new Ipv8Error('BAD_VALUE', { format: name, reason: 'expected string' })
      inner.write(w, Buffer.from(value, 'utf8'))
    },
    read: (r) => decodeUtf8(inner.read(r)),
  }
}

function scalar<T>(name: string, write: (w: Writer, v: T) => void, read: (r: Reader) => T): Format<T> {
  return { name, write, read }
}

const u8 = scalar<number>(
  'B',
  (w, v) => w.u8(v),
  (r) => r.u8(),
)
const u16 = scalar<number>(
  'H',
  (w, v) => w.u16(v),
  (r) => r.u16(),
)
const u32 = scalar<number>(
  'I',
  (w, v) => w.u32(v),
  (r) => r.u32(),
)
const u64 = scalar<bigint>(
  'Q',
  (w, v) => w.u64(v),
  (r) => r.u64(),
)
const char = fixed(1)

/** A struct of several fields packed together, decoded as a tuple (py-ipv8's `BBH`, `QL`, ...). */
function tuple<T extends unknown[]>(name: string, parts: { [K in keyof T]: Format<T[K]> }): Format<T> {
  return {
    name,
    write(w, value) {
      if (!Array.isArray(value) || value.length !== parts.length) {
        throw new Ipv8Error('BAD_VALUE', { format: name, reason: `expected ${parts.length} values` })
      }
      parts.forEach((part, i) => {
        part.write(w, value[i])
      })
    },
    read: (r) => parts.map((part) => part.read(r)) as T,
  }
}

function littleEndianArray<T>(
  name: string,
  itemBytes: number,
  write: (b: Buffer, at: number, v: T) => void,
  read: (b: Buffer, at: number) => T,
): Format<T[]> {
  return {
    name,
    write(w, values) {
      if (!Array.isArray(values) || values.length > 0xffff)
        throw new Ipv8Error('BAD_VARLEN', { format: name })
      const at = w.reserve(2)
      w.buffer.writeUInt16LE(values.length, at)
      for (const value of values) {
        const at = w.reserve(itemBytes)
        write(w.buffer, at, value)
      }
    },
    read(r) {
      const count = r.data.readUInt16LE(r.take(2))
      if (count * itemBytes > r.remaining) throw new Ipv8Error('BAD_VARLEN', { format: name, count })
      const out: T[] = []
      for (let i = 0; i < count; i++) out.push(read(r.data, r.take(itemBytes)))
      return out
    },
  }
}

const BIT_VALUES = [0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01]
const varlenH = varlen('varlenH', 2)

/** Every py-ipv8 format code and its implementation. */
export const FORMATS: { readonly [K in FormatCode]: Format<FormatTypes[K]> } = {
  '?': scalar(
    '?',
    (w, v) => w.u8(v ? 1 : 0),
    (r) => r.u8() !== 0,
  ),
  B: u8,
  H: u16,
  I: u32,
  l: scalar(
    'l',
    (w, v) => w.i32(v),
    (r) => r.i32(),
  ),
  f: scalar(
    'f',
    (w, v) => w.f32(v),
    (r) => r.f32(),
  ),
  d: scalar(
    'd',
    (w, v) => w.f64(v),
    (r) => r.f64(),
  ),
  q: scalar(
    'q',
    (w, v) => w.i64(v),
    (r) => r.i64(),
  ),
  Q: u64,
  c: char,
  BBH: tuple('BBH', [u8, u8, u16]),
  BH: tuple('BH', [u8, u16]),
  HH: tuple('HH', [u16, u16]),
  LL: tuple('LL', [u32, u32]),
  QH: tuple('QH', [u64, u16]),
  QL: tuple('QL', [u64, u32]),
  QQHHBH: tuple('QQHHBH', [u64, u64, u16, u16, u8, u16]),
  ccB: tuple('ccB', [char, char, u8]),
  c20s: tuple('c20s', [char, fixed(20)]),
  '4SH': tuple('4SH', [fixed(4), u16]),
  '20s': fixed(20),
  '32s': fixed(32),
  '64s': fixed(64),
  '74s': fixed(74),
  bits: {
    name: 'bits',
    write(w, bits) {
      if (!Array.isArray(bits) || bits.length !== 8) throw new Ipv8Error('BAD_VALUE', { format: 'bits' })
      let byte = 0
      bits.forEach((bit, i) => {
        if (bit) byte |= BIT_VALUES[i] as number
      })
      w.u8(byte)
    },
    read(r) {
      const byte = r.u8()
      return BIT_VALUES.map((value) => (byte & value) !== 0)
    },
  },
  ipv4: { name: 'ipv4', write: writeIpv4Address, read: readIpv4Address },
  ip_address: {
    name: 'ip_address',
    write: (w, v) => writeTypedAddress(w, v, false),
    read: (r) => readTypedAddress(r, false),
  },
  address: {
    name: 'address',
    write: (w, v) => writeTypedAddress(w, v, true),
    read: (r) => readTypedAddress(r, true),
  },
  raw: {
    name: 'raw',
    greedy: true,
    write: (w, v) => w.bytes(checkBytes(v, 'raw')),
    read: (r) => r.rest(),
  },
  varlenH,
  varlenI: varlen('varlenI', 4),
  varlenHutf8: utf8('varlenHutf8', 2),
  varlenIutf8: utf8('varlenIutf8', 4),
  varlenBx2: varlen('varlenBx2', 1, 2),
  varlenHx20: varlen('varlenHx20', 2, 20),
  doublevarlenH: varlen('doublevarlenH', 2),
  'varlenH-list': {
    name: 'varlenH-list',
    write(w, items) {
      if (!Array.isArray(items) || items.length > 0xff)
        throw new Ipv8Error('BAD_VARLEN', { format: 'varlenH-list' })
      w.u8(items.length)
      for (const item of items) varlenH.write(w, item)
    },
    read(r) {
      const count = r.u8()
      const out: Buffer[] = []
      for (let i = 0; i < count; i++) out.push(varlenH.read(r))
      return out
    },
  },
  'arrayH-?': littleEndianArray<boolean>(
    'arrayH-?',
    1,
    (b, at, v) => {
      b[at] = v ? 1 : 0
    },
    (b, at) => b[at] !== 0,
  ),
  'arrayH-q': littleEndianArray<bigint>(
    'arrayH-q',
    8,
    (b, at, v) => {
      if (typeof v !== 'bigint' || v < -(2n ** 63n) || v >= 2n ** 63n)
        throw new Ipv8Error('BAD_VALUE', { format: 'q' })
      b.writeBigInt64LE(v, at)
    },
    (b, at) => b.readBigInt64LE(at),
  ),
  'arrayH-d': littleEndianArray<number>(
    'arrayH-d',
    8,
    (b, at, v) => {
      b.writeDoubleLE(v, at)
    },
    (b, at) => b.readDoubleLE(at),
  ),
  flags: {
    name: 'flags',
    write(w, flags) {
      if (!Array.isArray(flags)) throw new Ipv8Error('BAD_VALUE', { format: 'flags' })
      let mask = 0
      for (const flag of flags) mask |= flag
      w.u16(mask & 0xffff)
    },
    read(r) {
      const mask = r.u16()
      const out: number[] = []
      for (let bit = 1; bit <= 0x8000; bit <<= 1) if ((mask & bit) !== 0) out.push(bit)
      return out
    },
  },
}

/** Whether `code` is a py-ipv8 format code. */
export function isFormatCode(code: string): code is FormatCode {
  return Object.hasOwn(FORMATS, code)
}
