import type { Encodable } from './types.js'
import { BencodeError } from './types.js'

const MAX_DEPTH = 1000
const INITIAL_SIZE = 1024
const NON_BINARY = /[^\x00-\xff]/

/**
 * Encodes a value as bencode. Dictionary keys are written in ascending byte order; keys are binary strings (one
 * character per byte, as `decode` returns them), while string values are written as UTF-8.
 *
 * @throws {BencodeError} `UNSUPPORTED_TYPE` (null, booleans, functions...), `INVALID_INTEGER` (a fraction,
 *   `NaN`, an unsafe number), `INVALID_KEY` (a key with a character above U+00FF), `DEPTH_EXCEEDED` (a cycle).
 * @example
 * ```ts
 * encode({ announce: 'http://tracker/announce', info: { length: 3, name: 'x' } })
 * ```
 */
export function encode(value: Encodable): Buffer {
  const encoder = new Encoder()
  encoder.write(value, 0)
  return encoder.result()
}

class Encoder {
  #buf = Buffer.allocUnsafe(INITIAL_SIZE)
  #pos = 0

  result(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#pos))
  }

  write(value: Encodable, depth: number): void {
    if (typeof value === 'number') this.#integer(value)
    else if (typeof value === 'bigint') this.#ascii(`i${value}e`)
    else if (typeof value === 'string') this.#bytes(Buffer.from(value, 'utf8'))
    else if (value instanceof Uint8Array) this.#bytes(value)
    else this.#container(value, depth)
  }

  #container(value: Encodable, depth: number): void {
    if (depth >= MAX_DEPTH) throw new BencodeError('DEPTH_EXCEEDED', { maxDepth: MAX_DEPTH })
    if (Array.isArray(value)) {
      this.#ascii('l')
      for (const item of value as readonly Encodable[]) this.write(item, depth + 1)
      this.#ascii('e')
      return
    }
    if (value instanceof Map) this.#dict([...value.entries()], depth)
    else if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) {
      this.#dict(Object.entries(value), depth)
    } else throw new BencodeError('UNSUPPORTED_TYPE', { type: value === null ? 'null' : typeof value })
  }

  #dict(entries: [string, Encodable | undefined][], depth: number): void {
    const present = entries.filter((entry): entry is [string, Encodable] => entry[1] !== undefined)
    for (const [key] of present) {
      if (typeof key !== 'string' || NON_BINARY.test(key))
        throw new BencodeError('INVALID_KEY', { key: String(key) })
    }
    // Default sort compares UTF-16 code units, which for binary strings is byte order (BEP 3).
    present.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    this.#ascii('d')
    for (const [key, item] of present) {
      this.#ascii(`${key.length}:`)
      this.#latin1(key)
      this.write(item, depth + 1)
    }
    this.#ascii('e')
  }

  #integer(value: number): void {
    if (!Number.isSafeInteger(value)) throw new BencodeError('INVALID_INTEGER', { value: String(value) })
    // `-0` is a number JavaScript has and bencode does not.
    this.#ascii(`i${value === 0 ? 0 : value}e`)
  }

  #bytes(bytes: Uint8Array): void {
    this.#ascii(`${bytes.length}:`)
    this.#reserve(bytes.length)
    this.#buf.set(bytes, this.#pos)
    this.#pos += bytes.length
  }

  #ascii(text: string): void {
    this.#latin1(text)
  }

  #latin1(text: string): void {
    this.#reserve(text.length)
    this.#pos += this.#buf.write(text, this.#pos, 'latin1')
  }

  #reserve(length: number): void {
    if (this.#pos + length <= this.#buf.length) return
    let size = this.#buf.length * 2
    while (size < this.#pos + length) size *= 2
    const grown = Buffer.allocUnsafe(size)
    this.#buf.copy(grown, 0, 0, this.#pos)
    this.#buf = grown
  }
}
