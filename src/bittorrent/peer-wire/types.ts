import { TriblerError } from '../../common/index.js'

/** Why a peer connection failed or was dropped. */
export type PeerWireErrorCode =
  /** The first bytes were not a BitTorrent handshake. */
  | 'INVALID_HANDSHAKE'
  /** The peer answered with another torrent's info hash. */
  | 'INFO_HASH_MISMATCH'
  /** No complete handshake within the handshake timeout. */
  | 'HANDSHAKE_TIMEOUT'
  /** A length prefix above the maximum message length. */
  | 'MESSAGE_TOO_LONG'
  /** A message whose length does not fit its type, or a field out of range. */
  | 'INVALID_MESSAGE'
  /** A message id we do not know (dropped: the peer violates the extensions it negotiated). */
  | 'UNKNOWN_MESSAGE'
  /** A fast-extension or extension-protocol message from a peer that did not negotiate it. */
  | 'NOT_NEGOTIATED'
  /** A bitfield, have-all or have-none after the first message, or a bitfield of the wrong size. */
  | 'INVALID_BITFIELD'
  /** An extension message (BEP 10, 9, 11) whose payload is malformed. */
  | 'INVALID_EXTENSION_MESSAGE'
  /** A piece message we never requested, or more requests than we allow. */
  | 'UNEXPECTED_PIECE'
  | 'REQUEST_FLOOD'
  /** Nothing received for the idle timeout. */
  | 'IDLE_TIMEOUT'
  /** The connection was closed (by either side) while something waited on it. */
  | 'CLOSED'
  /** A request of ours was rejected (BEP 6 reject), or dropped by a choke without the fast extension. */
  | 'REQUEST_REJECTED'
  | 'CHOKED'
  | 'REQUEST_TIMEOUT'
  | 'REQUEST_CANCELLED'
  /** More outstanding requests than the peer accepts (its `reqq`) or our own limit. */
  | 'REQUEST_QUEUE_FULL'
  /** The peer does not support an extension we asked it to use (for example ut_metadata). */
  | 'UNSUPPORTED_BY_PEER'
  /** Metadata from ut_metadata did not hash to the info hash, or the peer rejected or lacked it. */
  | 'METADATA_HASH_MISMATCH'
  | 'METADATA_REJECTED'
  | 'METADATA_TOO_LARGE'
  /** A method was called in a state that does not allow it (before the handshake, after close). */
  | 'INVALID_STATE'

/**
 * An error of the peer wire protocol. Protocol violations by the remote peer close the connection with one of
 * these (the `error` event and the `closed` promise carry it); they are never thrown out of a socket callback.
 */
export class PeerWireError extends TriblerError<PeerWireErrorCode> {}

/** A 20-byte info hash or peer id. */
export type Id20 = Uint8Array

/** Extensions announced in the handshake's reserved bytes. */
export interface HandshakeExtensions {
  /** BEP 10 extension protocol (reserved byte 5, bit 0x10). */
  extended: boolean
  /** BEP 6 fast extension (reserved byte 7, bit 0x04). */
  fast: boolean
  /** BEP 5 DHT, the `port` message (reserved byte 7, bit 0x01). */
  dht: boolean
}

/** A received handshake. */
export interface Handshake {
  infoHash: Buffer
  peerId: Buffer
  /** The 8 reserved bytes as sent. */
  reserved: Buffer
  extensions: HandshakeExtensions
}

/** One block of a piece: `length` bytes at `begin` in piece `index`. */
export interface BlockRequest {
  index: number
  begin: number
  length: number
}

/** A peer address as carried by ut_pex and trackers. */
export interface PeerAddress {
  host: string
  port: number
}

/** BEP 11 per-peer flags (`added.f`). */
export const PEX_FLAGS = {
  /** Prefers encryption. */
  ENCRYPTION: 0x01,
  /** Is a seed or upload-only. */
  SEED: 0x02,
  SUPPORTS_UTP: 0x04,
  SUPPORTS_HOLEPUNCH: 0x08,
  /** Reachable (we connected out to it). */
  REACHABLE: 0x10,
} as const

/** A peer in a ut_pex message, with its BEP 11 flags. */
export interface PexPeer extends PeerAddress {
  flags: number
}

/** A decoded ut_pex message: IPv4 and IPv6 peers together. */
export interface PexMessage {
  added: PexPeer[]
  dropped: PeerAddress[]
}

/** The fields of a BEP 10 extended handshake we use; `m` maps extension names to the sender's message ids. */
export interface ExtendedHandshake {
  m: Record<string, number>
  /** Client name and version. */
  v?: string
  /** The sender's listen port. */
  p?: number
  /** How many outstanding requests the sender accepts. */
  reqq?: number
  /** Our address as the sender sees it (4 or 16 bytes). */
  yourip?: Buffer
  /** Size of the info dictionary, for ut_metadata (BEP 9). */
  metadataSize?: number
  /** BEP 21: the sender only uploads. */
  uploadOnly?: boolean
}

/** Byte counts and rates of one connection, both directions, payload (block data) apart from protocol bytes. */
export interface PeerWireStats {
  payloadBytesDown: number
  payloadBytesUp: number
  protocolBytesDown: number
  protocolBytesUp: number
  /** Payload bytes per second over the last few seconds. */
  payloadRateDown: number
  payloadRateUp: number
  messagesDown: number
  messagesUp: number
  /** Our requests waiting for a block, and the peer's requests we have not answered. */
  requestsOut: number
  requestsIn: number
  /** Blocks received that we had not requested (or had cancelled); ignored. */
  unexpectedBlocks: number
}
