import { Ipv8Error } from '../errors.js'

/** Reads big-endian fields from a datagram; every read past the end throws `TRUNCATED`. */
export class Reader {
  offset: number
  readonly end: number

  constructor(
    readonly data: Buffer,
    start = 0,
    end = data.length,
  ) {
    this.offset = start
    this.end = end
  }

  get remaining(): number {
    return this.end - this.offset
  }

  /** Advances past `n` bytes and returns where they start. */
  take(n: number): number {
    if (n > this.end - this.offset) {
      throw new Ipv8Error('TRUNCATED', { offset: this.offset, need: n, have: this.end - this.offset })
    }
    const at = this.offset
    this.offset += n
    return at
  }

  bytes(n: number): Buffer {
    const at = this.take(n)
    return this.data.subarray(at, at + n)
  }

  rest(): Buffer {
    return this.bytes(this.remaining)
  }

  u8(): number {
    return this.data[this.take(1)] as number
  }

  u16(): number {
    return this.data.readUInt16BE(this.take(2))
  }

  u32(): number {
    return this.data.readUInt32BE(this.take(4))
  }

  i32(): number {
    return this.data.readInt32BE(this.take(4))
  }

  u64(): bigint {
    return this.data.readBigUInt64BE(this.take(8))
  }

  i64(): bigint {
    return this.data.readBigInt64BE(this.take(8))
  }

  f32(): number {
    return this.data.readFloatBE(this.take(4))
  }

  f64(): number {
    return this.data.readDoubleBE(this.take(8))
  }
}

/** Appends fields to a growing buffer. */
export class Writer {
  #buf: Buffer
  #length = 0

  constructor(initialSize = 256) {
    this.#buf = Buffer.allocUnsafe(initialSize)
  }

  get length(): number {
    return this.#length
  }

  /** Forgets everything written, keeping the allocated buffer for the next message. */
  reset(): void {
    this.#length = 0
  }

  /** Reserves `n` bytes and returns their offset in {@link Writer.buffer}. */
  reserve(n: number): number {
    const need = this.#length + n
    if (need > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2))
      this.#buf.copy(grown, 0, 0, this.#length)
      this.#buf = grown
    }
    const at = this.#length
    this.#length = need
    return at
  }

  /** The internal buffer; valid only until the next write. */
  get buffer(): Buffer {
    return this.#buf
  }

  bytes(data: Uint8Array): void {
    const at = this.reserve(data.length)
    this.#buf.set(data, at)
  }

  u8(value: number): void {
    checkUint(value, 0xff)
    const at = this.reserve(1)
    this.#buf[at] = value
  }

  u16(value: number): void {
    checkUint(value, 0xffff)
    const at = this.reserve(2)
    this.#buf.writeUInt16BE(value, at)
  }

  u32(value: number): void {
    checkUint(value, 0xffffffff)
    const at = this.reserve(4)
    this.#buf.writeUInt32BE(value, at)
  }

  i32(value: number): void {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw new Ipv8Error('BAD_VALUE', { value, format: 'int32' })
    }
    const at = this.reserve(4)
    this.#buf.writeInt32BE(value, at)
  }

  u64(value: bigint | number): void {
    const big = toBigInt(value)
    if (big < 0n || big > 0xffffffffffffffffn)
      throw new Ipv8Error('BAD_VALUE', { value: String(value), format: 'uint64' })
    const at = this.reserve(8)
    this.#buf.writeBigUInt64BE(big, at)
  }

  i64(value: bigint | number): void {
    const big = toBigInt(value)
    if (big < -(2n ** 63n) || big >= 2n ** 63n)
      throw new Ipv8Error('BAD_VALUE', { value: String(value), format: 'int64' })
    const at = this.reserve(8)
    this.#buf.writeBigInt64BE(big, at)
  }

  f32(value: number): void {
    const at = this.reserve(4)
    this.#buf.writeFloatBE(checkNumber(value), at)
  }

  f64(value: number): void {
    const at = this.reserve(8)
    this.#buf.writeDoubleBE(checkNumber(value), at)
  }

  /** A copy of everything written. */
  toBuffer(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#length))
  }
}

function checkUint(value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Ipv8Error('BAD_VALUE', { value, max })
}

function checkNumber(value: number): number {
  if (typeof value !== 'number') throw new Ipv8Error('BAD_VALUE', { value: String(value), format: 'float' })
  return value
}

function toBigInt(value: bigint | number): bigint {
  if (typeof value === 'bigint') return value
  if (!Number.isSafeInteger(value)) throw new Ipv8Error('BAD_VALUE', { value, format: 'integer' })
  return BigInt(value)
}
