/**
 * The BitTorrent peer wire protocol over any Duplex (TCP, uTP, in-process): BEP 3 messages, the fast extension
 * (BEP 6), the extension protocol (BEP 10) with ut_metadata (BEP 9) and ut_pex (BEP 11), and the DHT port message.
 *
 * @example
 * ```ts
 * import { PeerWire } from '../peer-wire/index.js'
 * const wire = new PeerWire(net.connect(6881, '127.0.0.2'), { peerId, infoHash })
 * const info = await wire.fetchMetadata({ signal })
 * ```
 */
export { allowedFastSet } from './allowed-fast.js'
export { decodeCompactPeers, encodeCompactPeers } from './compact.js'
export { duplexPair } from './duplex-pair.js'
export {
  decodeExtendedHandshake,
  decodeMetadataMessage,
  decodePex,
  encodeExtendedHandshake,
  encodeMetadataMessage,
  encodePex,
  LOCAL_EXTENSION_IDS,
  MAX_PEX_PEERS,
  METADATA_PIECE_BYTES,
  type MetadataMessage,
} from './extensions.js'
export { Framer } from './framer.js'
export { decodeHandshake, encodeHandshake } from './handshake.js'
export * as messages from './messages.js'
export { DEFAULT_MAX_METADATA_BYTES, MetadataAssembler } from './metadata.js'
export {
  BLOCK_BYTES,
  type BlockMessage,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_OUTSTANDING_REQUESTS,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_REQQ,
  DEFAULT_REQUEST_TIMEOUT_MS,
  fullBitfield,
  PeerWire,
  type PeerWireEvents,
  type PeerWireOptions,
} from './peer-wire.js'
export { isPooledRead, POOLED_READ_BYTES, pooledReads, releaseRead } from './read-pool.js'
export { RateMeter } from './stats.js'
export {
  type BlockRequest,
  type ExtendedHandshake,
  type Handshake,
  type HandshakeExtensions,
  type Id20,
  PEX_FLAGS,
  type PeerAddress,
  PeerWireError,
  type PeerWireErrorCode,
  type PeerWireStats,
  type PexMessage,
  type PexPeer,
} from './types.js'
