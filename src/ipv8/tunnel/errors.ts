import { TriblerError } from '../../common/index.js'

/** Codes of {@link TunnelError}. */
export type TunnelErrorCode =
  /** A key exchange failed: bad key length, low-order point, or an `auth` that does not verify. */
  | 'KEY_EXCHANGE'
  /** A layer could not be decrypted (truncated, forged, or under other keys). */
  | 'DECRYPT'
  /** A layer's counter was accepted before: a replayed cell. */
  | 'REPLAY'
  /** A cell is malformed (too short, plaintext flag on an encrypted message type, bad payload). */
  | 'BAD_CELL'
  /** No circuit of the requested length could be built (no candidates, timeout, destroyed). */
  | 'NO_CIRCUIT'
  /** The circuit is gone or not ready. */
  | 'CIRCUIT_CLOSED'
  /** The tunnel community is not running. */
  | 'NOT_RUNNING'
  /** A request is outside what the tunnel supports (a hop count out of range, a payload too large). */
  | 'BAD_REQUEST'

/**
 * The error of the tunnel community.
 *
 * @example
 * ```ts
 * throw new TunnelError('DECRYPT', { circuitId })
 * ```
 */
export class TunnelError extends TriblerError<TunnelErrorCode> {}
