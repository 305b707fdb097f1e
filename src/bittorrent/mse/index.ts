/**
 * BitTorrent message stream encryption (MSE, also called protocol encryption), as Vuze and libtorrent speak it:
 * a Diffie-Hellman exchange over the 768-bit prime, the info hash as shared secret, and an RC4 or plaintext payload
 * stream. Each side takes a raw connection (any Duplex: TCP, uTP, in-process) and resolves with a Duplex of
 * plaintext BitTorrent bytes, so the peer wire runs on top unchanged. RC4 is OpenSSL's when Node has it, else our
 * own.
 *
 * @example
 * ```ts
 * import { acceptConnection, infoHashLookup, openOutgoing } from '../mse/index.js'
 * // dialling
 * const out = await openOutgoing(socket, { policy: 'forced', infoHash, allowedMethods: ['rc4'] })
 * const wire = new PeerWire(out.stream, { peerId, infoHash })
 * // accepting: plain BitTorrent or MSE, the torrent found among ours
 * const lookup = infoHashLookup(torrents.map((t) => t.infoHash))
 * const conn = await acceptConnection(incoming, { policy: 'enabled', lookup })
 * const peer = new PeerWire(conn.stream, { peerId }) // conn.infoHash, conn.method, conn.encrypted
 * ```
 */
export { DH_BYTES, DhKeys, MSE_PRIME } from './dh.js'
export {
  acceptConnection,
  BITTORRENT_PROTOCOL_HEADER,
  DEFAULT_MSE_TIMEOUT_MS,
  infoHashLookup,
  MAX_PAD_BYTES,
  mseInitiate,
  mseRespond,
  openOutgoing,
  RC4_DISCARD_BYTES,
  req2Hash,
} from './handshake.js'
export { MseStream } from './mse-stream.js'
export { createRc4, nativeRc4Available, Rc4, type StreamCipher } from './rc4.js'
export {
  type CryptoMethod,
  type EncryptionPolicy,
  type InfoHashLookup,
  MseError,
  type MseErrorCode,
  type MseInitiatorOptions,
  type MseMethodOptions,
  type MseResponderOptions,
  type MseResult,
} from './types.js'
