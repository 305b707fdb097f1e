import { asBuffer } from '../common/index.js'
import type { BencodeDict, BencodeList, BencodeValue, DecodeOptions, Span } from './types.js'
import { BencodeError } from './types.js'

const DEFAULT_MAX_DEPTH = 100
const HARD_MAX_DEPTH = 1000
const DEFAULT_MAX_ITEMS = 2_000_000
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024

const CHAR_0 = 0x30
const CHAR_9 = 0x39
const CHAR_COLON = 0x3a
const CHAR_MINUS = 0x2d
const CHAR_D = 0x64
const CHAR_E = 0x65
const CHAR_I = 0x69
const CHAR_L = 0x6c

// Numbers with at most 15 digits are exact in a double; longer ones go through BigInt.
const MAX_FAST_DIGITS = 15
// 2^63 has 19 digits: anything longer cannot be a signed 64-bit integer, so it is rejected before BigInt parses it.
const MAX_INTEGER_DIGITS = 19
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const SHORT_KEY = 24

/**
 * Decodes one bencoded value. Byte strings in the result are `Uint8Array` views of `data` (not copies): copy them
 * before changing `data`.
 *
 * @throws {BencodeError} on malformed input, with `details.offset`.
 * @example
 * ```ts
 * const torrent = decode(await readFile('x.torrent'), { strict: false }) as BencodeDict
 * const name = torrent.info // a BencodeDict
 * ```
 */
export function decode(data: Uint8Array, options: DecodeOptions = {}): BencodeValue {
  const decoder = new Decoder(data, options)
  const value = decoder.value(0)
  decoder.finish(options.allowTrailing === true)
  return value
}

/**
 * Finds the byte range of the value at `path` (dictionary keys and list indices) without decoding the rest, or
 * `undefined` when the path does not exist. Only the bytes walked over are checked: decode the whole input first
 * when it must be valid. The range is what a hash of that value must cover, for example the infohash over
 * `['info']`.
 *
 * @example
 * ```ts
 * const span = locate(torrentBytes, ['info'])
 * const infoBytes = span && torrentBytes.subarray(span.start, span.end)
 * ```
 */
export function locate(
  data: Uint8Array,
  path: readonly (string | number)[],
  options: DecodeOptions = {},
): Span | undefined {
  const decoder = new Decoder(data, options)
  for (let depth = 0; depth < path.length; depth++) {
    const step = path[depth]!
    if (!decoder.enter(step, depth)) return undefined
  }
  const start = decoder.pos
  decoder.skip(path.length)
  return { start, end: decoder.pos }
}

/** The bytes of the value at `path` (a view of `data`), or `undefined` when the path does not exist. */
export function rawValue(
  data: Uint8Array,
  path: readonly (string | number)[],
  options: DecodeOptions = {},
): Uint8Array | undefined {
  const span = locate(data, path, options)
  return span === undefined ? undefined : data.subarray(span.start, span.end)
}

class Decoder {
  pos = 0
  readonly #buf: Buffer
  readonly #strict: boolean
  readonly #maxDepth: number
  readonly #maxItems: number
  #items = 0

  constructor(data: Uint8Array, options: DecodeOptions) {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    if (data.length > maxBytes) throw new BencodeError('INPUT_TOO_LARGE', { length: data.length, maxBytes })
    this.#buf = asBuffer(data)
    this.#strict = options.strict ?? true
    this.#maxDepth = Math.min(options.maxDepth ?? DEFAULT_MAX_DEPTH, HARD_MAX_DEPTH)
    this.#maxItems = options.maxItems ?? DEFAULT_MAX_ITEMS
  }

  finish(allowTrailing: boolean): void {
    if (!allowTrailing && this.pos !== this.#buf.length)
      throw new BencodeError('TRAILING_DATA', { offset: this.pos })
  }

  value(depth: number): BencodeValue {
    if (++this.#items > this.#maxItems) throw new BencodeError('TOO_MANY_ITEMS', { offset: this.pos })
    const c = this.#buf[this.pos]
    if (c === undefined) throw new BencodeError('UNEXPECTED_END', { offset: this.pos })
    if (c >= CHAR_0 && c <= CHAR_9) return this.#bytes()
    if (c === CHAR_I) return this.#integer()
    if (c === CHAR_L) return this.#list(depth)
    if (c === CHAR_D) return this.#dict(depth)
    throw new BencodeError('UNEXPECTED_BYTE', { offset: this.pos, byte: c })
  }

  /** Checks and steps over one value. */
  skip(depth: number): void {
    if (++this.#items > this.#maxItems) throw new BencodeError('TOO_MANY_ITEMS', { offset: this.pos })
    const c = this.#buf[this.pos]
    if (c === undefined) throw new BencodeError('UNEXPECTED_END', { offset: this.pos })
    if (c >= CHAR_0 && c <= CHAR_9) {
      this.pos = this.#stringEnd()
    } else if (c === CHAR_I) {
      this.#integer()
    } else if (c === CHAR_L) {
      this.#open(depth)
      while (!this.#close()) this.skip(depth + 1)
    } else if (c === CHAR_D) {
      this.#entries(depth, () => false)
    } else {
      throw new BencodeError('UNEXPECTED_BYTE', { offset: this.pos, byte: c })
    }
  }

  /** Moves into the dictionary entry or list element `step` of the value at `pos`; false when it is absent. */
  enter(step: string | number, depth: number): boolean {
    const c = this.#buf[this.pos]
    if (typeof step === 'string' && c === CHAR_D) return this.#entries(depth, (key) => key === step)
    if (typeof step === 'number' && c === CHAR_L) {
      this.#open(depth)
      for (let index = 0; !this.#close(); index++) {
        if (index === step) return true
        this.skip(depth + 1)
      }
      return false
    }
    if (c === undefined) throw new BencodeError('UNEXPECTED_END', { offset: this.pos })
    return false
  }

  #open(depth: number): void {
    if (depth >= this.#maxDepth)
      throw new BencodeError('DEPTH_EXCEEDED', { offset: this.pos, maxDepth: this.#maxDepth })
    this.pos++
  }

  /** Consumes the `e` ending a list or dictionary; false when another element follows. */
  #close(): boolean {
    const c = this.#buf[this.pos]
    if (c === CHAR_E) {
      this.pos++
      return true
    }
    if (c === undefined) throw new BencodeError('UNEXPECTED_END', { offset: this.pos })
    return false
  }

  #list(depth: number): BencodeList {
    this.#open(depth)
    const list: BencodeList = []
    while (!this.#close()) list.push(this.value(depth + 1))
    return list
  }

  #dict(depth: number): BencodeDict {
    this.#open(depth)
    const dict: BencodeDict = Object.create(null)
    let previous: string | undefined
    let sorted = true
    while (!this.#close()) {
      const keyOffset = this.pos
      const key = this.#key()
      if (!this.#inOrder(key, previous, keyOffset)) sorted = false
      // Once keys are out of order, a duplicate need not be next to its twin.
      if (!sorted && key in dict) throw new BencodeError('DUPLICATE_KEY', { offset: keyOffset, key })
      previous = key
      dict[key] = this.value(depth + 1)
    }
    return dict
  }

  /** Whether `key` follows `previous` in byte order; throws on a duplicate, and in strict mode when out of order. */
  #inOrder(key: string, previous: string | undefined, offset: number): boolean {
    if (previous === undefined || key > previous) return true
    if (key === previous) throw new BencodeError('DUPLICATE_KEY', { offset, key })
    if (this.#strict) throw new BencodeError('UNSORTED_KEYS', { offset, key })
    return false
  }

  /**
   * Walks the entries of the dictionary at `pos`, checking key order and skipping values, until `stop(key)` holds
   * (then `pos` is at that key's value and the result is true) or the dictionary ends (false).
   */
  #entries(depth: number, stop: (key: string) => boolean): boolean {
    this.#open(depth)
    let previous: string | undefined
    const seen = new Set<string>()
    while (!this.#close()) {
      const keyOffset = this.pos
      const key = this.#key()
      this.#checkKeyOrder(key, previous, seen, keyOffset)
      previous = key
      if (stop(key)) return true
      this.skip(depth + 1)
    }
    return false
  }

  #checkKeyOrder(key: string, previous: string | undefined, seen: Set<string>, offset: number): void {
    this.#inOrder(key, previous, offset)
    if (!this.#strict) {
      if (seen.has(key)) throw new BencodeError('DUPLICATE_KEY', { offset, key })
      seen.add(key)
    }
  }

  #key(): string {
    if (++this.#items > this.#maxItems) throw new BencodeError('TOO_MANY_ITEMS', { offset: this.pos })
    const c = this.#buf[this.pos]
    if (c === undefined) throw new BencodeError('UNEXPECTED_END', { offset: this.pos })
    if (c < CHAR_0 || c > CHAR_9) throw new BencodeError('INVALID_KEY', { offset: this.pos, byte: c })
    const end = this.#stringEnd()
    const buf = this.#buf
    const start = end - this.#lastLength
    this.pos = end
    if (end - start > SHORT_KEY) return buf.toString('latin1', start, end)
    // The same few keys repeat thousands of times in a torrent ("length", "path"): reuse their strings.
    let hash = end - start
    for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + buf[i]!) | 0
    const cached = this.#keys.get(hash)
    if (cached !== undefined && cached.length === end - start && sameBytes(cached, buf, start)) return cached
    let key = ''
    for (let i = start; i < end; i++) key += String.fromCharCode(buf[i]!)
    this.#keys.set(hash, key)
    return key
  }

  readonly #keys = new Map<number, string>()

  #bytes(): Uint8Array {
    const end = this.#stringEnd()
    const start = end - this.#lastLength
    this.pos = end
    // A plain view is markedly cheaper to create than Buffer#subarray, and torrents hold many small strings.
    return new Uint8Array(this.#buf.buffer, this.#buf.byteOffset + start, end - start)
  }

  #lastLength = 0

  /** Parses `<length>:` at `pos` and returns where the string ends; leaves `pos` unchanged. */
  #stringEnd(): number {
    const buf = this.#buf
    const start = this.pos
    let i = start
    let length = 0
    let c = buf[i]!
    if (c === CHAR_0 && buf[i + 1] !== CHAR_COLON) {
      if (buf[i + 1] === undefined) throw new BencodeError('UNEXPECTED_END', { offset: i + 1 })
      throw new BencodeError('INVALID_LENGTH', { offset: start })
    }
    while (c >= CHAR_0 && c <= CHAR_9) {
      length = length * 10 + (c - CHAR_0)
      c = buf[++i]!
    }
    if (c !== CHAR_COLON) {
      if (c === undefined) throw new BencodeError('UNEXPECTED_END', { offset: i })
      throw new BencodeError('INVALID_LENGTH', { offset: start })
    }
    const end = i + 1 + length
    // A length with too many digits is larger than any input we accept, so it lands here too.
    if (i - start > MAX_FAST_DIGITS || end > buf.length) {
      throw new BencodeError('UNEXPECTED_END', { offset: start, length, available: buf.length - i - 1 })
    }
    this.#lastLength = length
    return end
  }

  #integer(): number | bigint {
    const buf = this.#buf
    const start = this.pos
    let i = start + 1
    const negative = buf[i] === CHAR_MINUS
    if (negative) i++
    const digitsStart = i
    let value = 0
    let c = buf[i]
    while (c !== undefined && c >= CHAR_0 && c <= CHAR_9) {
      value = value * 10 + (c - CHAR_0)
      c = buf[++i]
    }
    if (c === undefined) throw new BencodeError('UNEXPECTED_END', { offset: i })
    const digits = i - digitsStart
    if (c !== CHAR_E || digits === 0) throw new BencodeError('INVALID_INTEGER', { offset: start })
    // BEP 3: no leading zeros, and no negative zero.
    if (buf[digitsStart] === CHAR_0 && (digits > 1 || negative)) {
      throw new BencodeError('INVALID_INTEGER', { offset: start })
    }
    this.pos = i + 1
    if (digits <= MAX_FAST_DIGITS) return negative ? -value : value
    if (digits > MAX_INTEGER_DIGITS) throw new BencodeError('INTEGER_OVERFLOW', { offset: start })
    const big = BigInt(buf.toString('latin1', start + 1, i))
    if (big < INT64_MIN || big > INT64_MAX) throw new BencodeError('INTEGER_OVERFLOW', { offset: start })
    return big >= MIN_SAFE && big <= MAX_SAFE ? Number(big) : big
  }
}

function sameBytes(text: string, buf: Buffer, start: number): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== buf[start + i]) return false
  return true
}
