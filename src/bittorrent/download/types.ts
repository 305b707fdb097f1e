import type { Duplex } from 'node:stream'
import type { Clock, Logger } from '../../common/index.js'
import { TriblerError } from '../../common/index.js'
import type { SocketAddress } from '../../net/index.js'

/** Where a peer address came from. */
export type PeerSource = 'tracker' | 'dht' | 'pex' | 'lsd' | 'manual' | 'incoming' | 'hidden'

/**
 * How a peer connection is protected, as libtorrent's peer flags tell it: `rc4` (`rc4_encrypted`) after a message
 * stream encryption handshake that chose an RC4 payload, `plaintext` (`plaintext_encrypted`) after one that chose a
 * plaintext payload (only the handshake was obfuscated), `none` for plain BitTorrent.
 */
export type PeerEncryption = 'none' | 'plaintext' | 'rc4'

/** An open byte stream to a peer and the transport it runs over. */
export interface PeerConnection {
  readonly stream: Duplex
  readonly transport: 'tcp' | 'utp'
  /** Message stream encryption (MSE) of the stream and the payload method it settled on. Default `none`. */
  readonly encryption?: PeerEncryption
}

/** Dials a peer: a TCP socket, a uTP stream, or one end of an in-process pair in tests. */
export type PeerConnector = (peer: SocketAddress, opts: { signal: AbortSignal }) => Promise<PeerConnection>

/** When a finished download stops seeding (the `download_defaults.seeding_*` settings). */
export interface SeedingPolicy {
  readonly mode: 'ratio' | 'time' | 'never' | 'forever'
  /** Upload / size at which `ratio` stops. */
  readonly ratio: number
  /** Minutes of seeding after which `time` stops. */
  readonly timeMinutes: number
}

/** What a {@link Download} needs from its owner. */
export interface DownloadDeps {
  /** Dials outgoing peers. */
  readonly connect: PeerConnector
  /** Our 20-byte peer id. */
  readonly peerId: Uint8Array
  /** Our listen port, sent in the extended handshake. */
  readonly listenPort?: number
  readonly clock?: Clock
  readonly logger?: Logger
  /** The seeding policy, read whenever it is checked (so settings apply live). Default: seed forever. */
  readonly seedingPolicy?: () => SeedingPolicy
  /** Stores resume data (called periodically, on finish and on stop). */
  readonly saveResumeData?: (data: Buffer) => Promise<void>
  readonly random?: () => number
  /**
   * Whether `address` is a hidden-service peer's stand-in address (an end-to-end circuit, see the engine): such
   * peers are never told to others with ut_pex nor redialled at a listen port they name.
   */
  readonly isHiddenPeer?: (address: SocketAddress) => boolean
  /**
   * Called for each peer a ut_pex message names with the uTP flag (BEP 11's 0x04), so the connector can dial it over
   * uTP first again (libtorrent sets `supports_utp` from the same flag).
   */
  readonly peerSpeaksUtp?: (address: SocketAddress) => void
  /**
   * Whether the download may dial `address` now (default: always). A candidate it may not dial is kept untried, so
   * no failure counts against it and it is dialled once allowed again.
   */
  readonly mayDial?: (address: SocketAddress) => boolean
}

/** Tunables of a {@link Download}; every field has a default. */
export interface DownloadTuning {
  /** Open peer connections at most, both directions (default 50). */
  readonly maxConnections?: number
  /** Regular upload slots of the choker (default 4; one optimistic slot comes on top). */
  readonly uploadSlots?: number
  /** Seconds of a peer's download rate to keep requested (default 3, like libtorrent's request_queue_time). */
  readonly requestQueueSec?: number
  /** Outstanding requests per peer at least and at most (default 64 and 500). */
  readonly minRequests?: number
  readonly maxRequests?: number
  /** Complete pieces being hashed or waiting for the disk at most before requesting pauses (default 12 MiB). */
  readonly maxPendingWriteBytes?: number
  /** Hash failures a peer may be involved in before it is banned (default 2; a sole sender counts double). */
  readonly banAfterHashFailures?: number
  /** How often resume data is saved while pieces arrive (default 30 s). */
  readonly resumeSaveIntervalMs?: number
  readonly rechokeIntervalMs?: number
  readonly optimisticUnchokeIntervalMs?: number
  /** Time allowed to dial a peer (default 15 s). */
  readonly connectTimeoutMs?: number
  /** How often peers are told about other peers with ut_pex (default 60 s, as BEP 11 asks at most once a minute). */
  readonly pexIntervalMs?: number
  /** First delay before redialling a failed peer; doubled per failure (default 5 s, at most 10 minutes). */
  readonly reconnectBaseMs?: number
}

/** Codes of {@link DownloadError}. */
export type DownloadErrorCode = 'INVALID_STATE' | 'INVALID_SELECTION' | 'METADATA_MISMATCH'

/** A misuse of a {@link Download}. Disk failures do not throw: they stop the download with an error text. */
export class DownloadError extends TriblerError<DownloadErrorCode> {}
