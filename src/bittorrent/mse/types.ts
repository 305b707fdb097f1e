import type { Duplex } from 'node:stream'
import { TriblerError } from '../../common/index.js'

/** Why a message stream encryption handshake failed. The raw connection is destroyed in every case. */
export type MseErrorCode =
  /** No complete handshake within the timeout. */
  | 'TIMEOUT'
  /** The caller's signal aborted the handshake. */
  | 'ABORTED'
  /** The connection ended or failed before the handshake completed. */
  | 'CLOSED'
  /** The other side's Diffie-Hellman public value is out of range. */
  | 'INVALID_PUBLIC_KEY'
  /** HASH('req1', S) or the encrypted VC was not found within the 512 bytes of padding the spec allows. */
  | 'SYNC_NOT_FOUND'
  /** The initiator asked for a torrent we do not have (no SKEY matches). */
  | 'UNKNOWN_INFO_HASH'
  /** The verification constant did not decrypt to eight zero bytes. */
  | 'INVALID_VC'
  /** A padding length above 512. */
  | 'PAD_TOO_LONG'
  /** No method both sides allow (crypto_provide and our allowed methods do not meet). */
  | 'NO_COMMON_METHOD'
  /** The responder selected a method we did not offer, or more than one. */
  | 'INVALID_SELECT'
  /** A plaintext BitTorrent handshake arrived but our policy forces encryption. */
  | 'ENCRYPTION_REQUIRED'
  /** An MSE handshake arrived but our policy disables encryption. */
  | 'ENCRYPTION_DISABLED'
  /** Bad options from the caller (info hash length, initial payload size). */
  | 'INVALID_ARGUMENT'

/** Errors of message stream encryption; match `err.code`. */
export class MseError extends TriblerError<MseErrorCode> {}

/**
 * When to encrypt, as libtorrent's `in_enc_policy`/`out_enc_policy`: `disabled` speaks plain BitTorrent only,
 * `enabled` accepts both (and dials with MSE), `forced` refuses plain BitTorrent handshakes.
 */
export type EncryptionPolicy = 'disabled' | 'enabled' | 'forced'

/** The payload method after the MSE handshake (`crypto_select`): plaintext (0x01) or RC4 (0x02). */
export type CryptoMethod = 'plaintext' | 'rc4'

/** Options both sides of the MSE handshake share. */
export interface MseMethodOptions {
  /** Payload methods we accept after an MSE handshake (libtorrent's `allowed_enc_level`). Default both. */
  allowedMethods?: readonly CryptoMethod[]
  /** When both methods are possible, choose RC4 (libtorrent's `prefer_rc4`). Default true. */
  preferRc4?: boolean
  /** Bound on the whole handshake. Default {@link DEFAULT_MSE_TIMEOUT_MS}. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Use OpenSSL's RC4 when it has one (`auto`, default), never (`false`), or always (`true`). */
  nativeRc4?: boolean | 'auto'
}

/** Options of {@link mseInitiate}: we dial and know the torrent. */
export interface MseInitiatorOptions extends MseMethodOptions {
  /** The torrent's info hash: the shared secret SKEY. */
  infoHash: Uint8Array
  /** Bytes to send encrypted inside the handshake (IA), at most 65535; usually empty. */
  initialPayload?: Uint8Array
}

/**
 * Finds the torrent an initiator asks for: given HASH('req2', SKEY), the info hash whose hash it is, if we have
 * that torrent. {@link infoHashLookup} builds one from a list of info hashes.
 */
export type InfoHashLookup = (req2Hash: Buffer) => Uint8Array | undefined

/** Options of {@link mseRespond} and {@link acceptConnection}: we were dialled, the torrent is not known yet. */
export interface MseResponderOptions extends MseMethodOptions {
  lookup: InfoHashLookup
}

/** A connection ready for the peer wire. */
export interface MseResult {
  /** Reads and writes plaintext BitTorrent bytes; destroying it destroys the connection. */
  stream: Duplex
  /** Whether the MSE handshake took place (false: plain BitTorrent). */
  encrypted: boolean
  /** The payload method: RC4 or plaintext (also after an MSE handshake that selected plaintext). */
  method: CryptoMethod
  /** The torrent the initiator asked for (responder side of an MSE handshake). */
  infoHash?: Buffer
  /**
   * Bytes the initiator sent inside the handshake (IA), decrypted; usually its BitTorrent handshake. They are
   * already queued as the first bytes `stream` emits, so a peer wire on top reads them as usual.
   */
  initialPayload: Buffer
}
