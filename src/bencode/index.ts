/**
 * Bencode (BEP 3): strict, binary-safe decoding with limits against hostile input, encoding, and the exact byte
 * range of any sub-value (what infohashes are computed over).
 *
 * @example
 * ```ts
 * import { decode, encode, rawValue } from '../bencode/index.js'
 * const torrent = decode(bytes, { strict: false })
 * const info = rawValue(bytes, ['info']) // hash these bytes, never a re-encoding
 * ```
 */
export { decode, locate, rawValue } from './decode.js'
export { encode } from './encode.js'
export {
  type BencodeDict,
  BencodeError,
  type BencodeErrorCode,
  type BencodeList,
  type BencodeValue,
  type DecodeOptions,
  type Encodable,
  type Span,
} from './types.js'
