import { TriblerError } from '../common/index.js'

/**
 * A decoded bencode value. Integers are `number` when they fit in a safe JavaScript integer and `bigint` otherwise
 * (up to the signed 64-bit range, like libtorrent). Byte strings are `Uint8Array` (views of the input, never
 * copied and never turned into text). Dictionary keys are binary strings: one character per byte (latin1), so no
 * key is ever changed by decoding.
 */
export type BencodeValue = number | bigint | Uint8Array | BencodeList | BencodeDict

/** A bencode list. */
export type BencodeList = BencodeValue[]

/** A bencode dictionary. Decoded dictionaries have a null prototype, so `__proto__` is an ordinary key. */
export interface BencodeDict {
  [key: string]: BencodeValue
}

/**
 * What `encode` accepts: everything `decode` returns, plus UTF-8 text for byte strings, `Map`s and plain objects
 * (entries whose value is `undefined` are left out).
 */
export type Encodable =
  | number
  | bigint
  | string
  | Uint8Array
  | readonly Encodable[]
  | ReadonlyMap<string, Encodable | undefined>
  | { readonly [key: string]: Encodable | undefined }

/** Options of `decode` and `locate`. */
export interface DecodeOptions {
  /**
   * Strict (the default) rejects dictionaries whose keys are not in ascending byte order. Lenient accepts them,
   * since real torrents have them; duplicate keys are rejected in both modes.
   */
  readonly strict?: boolean
  /** Deepest nesting of lists and dictionaries accepted (default 100, at most 1000). */
  readonly maxDepth?: number
  /** Most values (integers, strings, lists, dictionaries) accepted in one input (default 2,000,000). */
  readonly maxItems?: number
  /** Longest input accepted, in bytes (default 64 MiB). */
  readonly maxBytes?: number
  /** Accept bytes after the first complete value instead of failing with `TRAILING_DATA` (default false). */
  readonly allowTrailing?: boolean
}

/** The byte range `[start, end)` of an encoded value inside its input. */
export interface Span {
  readonly start: number
  readonly end: number
}

/** Why bencode was rejected. */
export type BencodeErrorCode =
  | 'UNEXPECTED_END'
  | 'UNEXPECTED_BYTE'
  | 'INVALID_INTEGER'
  | 'INTEGER_OVERFLOW'
  | 'INVALID_LENGTH'
  | 'INVALID_KEY'
  | 'UNSORTED_KEYS'
  | 'DUPLICATE_KEY'
  | 'DEPTH_EXCEEDED'
  | 'TOO_MANY_ITEMS'
  | 'INPUT_TOO_LARGE'
  | 'TRAILING_DATA'
  | 'UNSUPPORTED_TYPE'

/**
 * An error decoding or encoding bencode. `details.offset` is the byte offset in the input where decoding failed;
 * `details.path` is where in the value encoding failed.
 */
export class BencodeError extends TriblerError<BencodeErrorCode> {}
