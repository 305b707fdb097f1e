import { TriblerError } from '../common/index.js'

/** Codes of {@link Ipv8Error}. */
export type Ipv8ErrorCode =
  /** The input ended before a field was complete. */
  | 'TRUNCATED'
  /** Bytes were left after the last field of a payload that does not end in `raw`. */
  | 'TRAILING_BYTES'
  /** A length prefix or count does not fit the data (or a value is too long for its length field). */
  | 'BAD_VARLEN'
  /** An address field has an unknown type byte, a bad host or a bad port. */
  | 'BAD_ADDRESS'
  /** A value does not fit its format (out of range integer, wrong type, too long for a fixed field). */
  | 'BAD_VALUE'
  /** A key bin or key file is malformed. */
  | 'BAD_KEY'
  /** A key type this node cannot use (legacy M2Crypto EC keys). */
  | 'UNSUPPORTED_KEY'
  /** A signature does not verify. */
  | 'BAD_SIGNATURE'
  /** A datagram does not start with a valid IPv8 prefix or has an unexpected message id. */
  | 'BAD_PREFIX'
  /** A string does not decode as UTF-8. */
  | 'BAD_UTF8'
  /** A schema declares a format code that does not exist. */
  | 'UNKNOWN_FORMAT'
  /** The key file could not be read or written. */
  | 'KEY_FILE'
  /** A community id is already registered on the endpoint. */
  | 'DUPLICATE_COMMUNITY'
  /** A request cache identifier is already in use. */
  | 'DUPLICATE_REQUEST'
  /** The overlay is not running. */
  | 'NOT_RUNNING'

/**
 * The error of the IPv8 subsystem. Decoding a packet never throws anything else.
 *
 * @example
 * ```ts
 * throw new Ipv8Error('TRUNCATED', { offset: 23, need: 2 })
 * ```
 */
export class Ipv8Error extends TriblerError<Ipv8ErrorCode> {}
