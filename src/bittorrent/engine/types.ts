import { TriblerError, type TypedEmitter } from '../../common/index.js'

/** The download states of the REST contract (§4.1), in index order. */
export const DOWNLOAD_STATES = [
  'DLSTATUS_ALLOCATING_DISKSPACE',
  'DLSTATUS_WAITING4HASHCHECK',
  'DLSTATUS_HASHCHECKING',
  'DLSTATUS_DOWNLOADING',
  'DLSTATUS_SEEDING',
  'DLSTATUS_STOPPED',
  'DLSTATUS_STOPPED_ON_ERROR',
  'DLSTATUS_METADATA',
  'DLSTATUS_CIRCUITS',
] as const
export type DownloadState = (typeof DOWNLOAD_STATES)[number]

/**
 * Azureus-style client prefix of our peer ids: Tribler's client code `TL` (the fingerprint Tribler gives its
 * libtorrent sessions) and our version 0.1.0. (`TS` already names another client, TorrentStorm.)
 */
export const PEER_ID_PREFIX = '-TL0100-'

/** The name {@link DownloadManager} services register under; the REST layer finds them by it. */
export const DOWNLOAD_MANAGER_SERVICE = 'bittorrent'

/** What to add: the raw bytes of a .torrent file, or a magnet link (metadata then comes from peers). */
export type DownloadSource =
  | { readonly kind: 'torrent'; readonly torrent: Uint8Array }
  | { readonly kind: 'magnet'; readonly magnet: string }

export interface AddDownloadOptions {
  readonly source: DownloadSource
  /** Directory to save into; default: the `download_defaults.saveas` setting. */
  readonly destination?: string
  /** Anonymity hops 0–3; default 0. */
  readonly hops?: number
  readonly safeSeeding?: boolean
  /** File indices to download; `undefined` or empty means all files. */
  readonly selectedFiles?: readonly number[]
  /** Add without starting (state `DLSTATUS_STOPPED`). */
  readonly stopped?: boolean
  /** This download's limits in bytes/s (whole numbers, 0 = unlimited, the default); see {@link RateLimits}. */
  readonly rateLimits?: Partial<RateLimits>
}

/**
 * Rate limits of one download in payload bytes per second, 0 = unlimited. They compose with the session-wide
 * `libtorrent.max_*_rate` limits: bytes move only when both allow it, so the lower limit wins. They are kept with
 * the download across restarts.
 */
export interface RateLimits {
  readonly downloadBytesPerSec: number
  readonly uploadBytesPerSec: number
}

export interface AddDownloadResult {
  /** 40 lowercase hex. */
  readonly infoHash: string
  /** False when the infohash was already present (its new trackers are merged in and a magnet's peers dialled). */
  readonly added: boolean
}

export interface TrackerStatusEntry {
  /** The announce URL, or the pseudo-trackers `[DHT]`, `[PeX]`, `[LSD]`. */
  readonly url: string
  readonly peers: number
  /** Tribler's status text: `Not contacted yet`, `Working`, `Updating...`, `Timeout`, `Error: …`, `Disabled`. */
  readonly status: string
}

/** A snapshot of one download; numbers are payload bytes and bytes per second. */
export interface DownloadStatus {
  readonly infoHash: string
  /** The torrent's name, or `Unknown name` until a magnet's metadata arrives. */
  readonly name: string
  readonly state: DownloadState
  /** Progress of the current state, 0..1 (download progress, or hash-check progress while checking). */
  readonly progress: number
  readonly size: number
  readonly speedDown: number
  readonly speedUp: number
  /** Payload bytes received and sent over the download's lifetime, across restarts (libtorrent's all-time totals). */
  readonly totalDown: number
  readonly totalUp: number
  /** Uploaded / size downloaded so far (0 when nothing was downloaded). */
  readonly ratio: number
  /** Seconds until done; `Number.MAX_SAFE_INTEGER` when unknown. */
  readonly eta: number
  readonly numPeers: number
  readonly numSeeds: number
  readonly numConnectedPeers: number
  readonly numConnectedSeeds: number
  readonly trackers: readonly TrackerStatusEntry[]
  readonly hops: number
  readonly safeSeeding: boolean
  readonly destination: string
  /** Distributed copies among connected peers (libtorrent's `distributed_copies`). */
  readonly availability: number
  readonly totalPieces: number
  /** `""` or the text of the error that stopped it. */
  readonly error: string
  /** Unix seconds. */
  readonly timeAdded: number
  readonly hasMetadata: boolean
  /** The download's own limits (0 = unlimited); the session-wide ones are {@link DownloadManager.rateLimits}. */
  readonly rateLimits: RateLimits
}

export interface PeerStatus {
  readonly id: string
  readonly client: string
  readonly ip: string
  readonly port: number
  readonly optimistic: boolean
  readonly weInterested: boolean
  readonly weChoked: boolean
  readonly peerInterested: boolean
  readonly peerChoked: boolean
  readonly snubbed: boolean
  readonly seed: boolean
  readonly uploadOnly: boolean
  /** `L` when we dialled it, `R` when it dialled us. */
  readonly direction: 'L' | 'R'
  readonly upRate: number
  readonly downRate: number
  readonly totalUp: number
  readonly totalDown: number
  /** The fraction of pieces the peer has, 0..1. */
  readonly completed: number
  /** 0 TCP, 1 uTP. */
  readonly connectionType: 0 | 1
  /**
   * Message stream encryption of the connection, as libtorrent's peer flags: `rc4` (`rc4_encrypted`), `plaintext`
   * (`plaintext_encrypted`: an MSE handshake that settled on a plaintext payload, so the payload is not encrypted)
   * or `none` (plain BitTorrent).
   */
  readonly encryption: 'none' | 'plaintext' | 'rc4'
}

export interface FileStatus {
  readonly index: number
  /** Path inside the torrent, `/`-separated. */
  readonly name: string
  readonly size: number
  readonly included: boolean
  readonly progress: number
}

export interface DownloadEvents {
  state: { infoHash: string; state: DownloadState }
  metadata: { infoHash: string; name: string }
  finished: { infoHash: string; name: string }
  error: { infoHash: string; error: string }
  removed: { infoHash: string }
}

/** One download as the REST layer and the CLI see it. */
export interface DownloadHandle {
  readonly infoHash: string
  status(): DownloadStatus
  peers(): readonly PeerStatus[]
  /** Empty until the metadata is known. */
  files(): readonly FileStatus[]
  /** One bit per piece, most significant bit first; empty until the metadata is known. */
  pieces(): Uint8Array
  /** The .torrent file (bencoded), once the metadata is known. */
  torrentFile(): Uint8Array | undefined
  resume(): Promise<void>
  stop(): Promise<void>
  /** Forces a hash check of the data on disk. */
  recheck(): Promise<void>
  /** Replaces the selection; indices must be in range (`RangeError` otherwise). */
  setSelectedFiles(indices: readonly number[]): Promise<void>
  /**
   * Changes the download's own limits at once (running transfers included) and keeps them; a field left out stays.
   * A limit that is not a whole number >= 0 is a `RangeError` and changes nothing.
   */
  setRateLimits(limits: Partial<RateLimits>): void
}

/**
 * The BitTorrent side of the core as the REST layer, the CLI and the watch folder use it. The engine service
 * implements it and registers under {@link DOWNLOAD_MANAGER_SERVICE}. Downloads, their states and choices are
 * kept in the store and come back after a restart.
 */
export interface DownloadManager {
  readonly name: typeof DOWNLOAD_MANAGER_SERVICE
  readonly events: TypedEmitter<DownloadEvents>
  /** Idempotent per infohash. Rejects with an `EngineError` (bad torrent, bad magnet, destination not writable…). */
  add(options: AddDownloadOptions): Promise<AddDownloadResult>
  get(infoHash: string): DownloadHandle | undefined
  list(): readonly DownloadHandle[]
  /**
   * Re-adds the download with another hop count (0–3), keeping its data and choices; resolves false for an
   * unknown infohash. Rejects with `EngineError('ANON_NOT_SUPPORTED')` without tunnels (nothing changes) and with
   * `EngineError` when the new one cannot be added (the download is put back as it was).
   */
  setHops(infoHash: string, hops: number): Promise<boolean>
  /** Resolves false for an unknown infohash. */
  remove(infoHash: string, options: { readonly removeData: boolean }): Promise<boolean>
  /**
   * The .torrent of a magnet, fetched from peers (trackers in the magnet, DHT, connected peers) or returned at
   * once when a download already has it. Rejects with `EngineError('METADATA_TIMEOUT')` after `timeoutMs`.
   * `hops` > 0 fetches it through circuits only (`ANON_NOT_SUPPORTED` without tunnels); unset, it is
   * `download_defaults.number_hops` when `anonymity_enabled` and the tunnels run, else 0.
   */
  fetchMetadata(
    magnet: string,
    options: { readonly timeoutMs: number; readonly signal?: AbortSignal; readonly hops?: number },
  ): Promise<Uint8Array>
  /**
   * How many seeders and leechers of a torrent we can reach directly: its metadata is fetched through the DHT
   * (as {@link DownloadManager.fetchMetadata} does for a magnet holding only the infohash), then the peers
   * connected for it are counted, those with every piece as seeders. A running download counts its own connected
   * peers. Rejects with `EngineError('DHT_DISABLED')` when the DHT is off and `EngineError('METADATA_TIMEOUT')`
   * after `timeoutMs`.
   */
  probeSwarm?(
    infoHash: string,
    options: { readonly timeoutMs: number; readonly signal?: AbortSignal },
  ): Promise<{ readonly seeders: number; readonly leechers: number }>
  /** Session-wide limits in bytes/s, 0 = unlimited (the `libtorrent.max_*_rate` settings). */
  rateLimits(): { readonly download: number; readonly upload: number }
}

export type EngineErrorCode =
  | 'INVALID_TORRENT'
  | 'INVALID_MAGNET'
  | 'DESTINATION_NOT_WRITABLE'
  | 'METADATA_TIMEOUT'
  | 'DHT_DISABLED'
  | 'ANON_NOT_SUPPORTED'
  | 'NOT_RUNNING'
  | 'HOPS_NOT_CHANGED'

/** An engine failure the REST layer maps to an error body; the message is meant for users. */
export class EngineError extends TriblerError<EngineErrorCode> {}

/** True when a session service is a {@link DownloadManager}. */
export function isDownloadManager(service: unknown): service is DownloadManager {
  return (
    typeof service === 'object' &&
    service !== null &&
    (service as { name?: unknown }).name === DOWNLOAD_MANAGER_SERVICE &&
    typeof (service as { add?: unknown }).add === 'function'
  )
}
