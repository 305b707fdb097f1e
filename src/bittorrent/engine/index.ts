/**
 * The BitTorrent engine as the rest of the core sees it: a {@link DownloadManager} of downloads with REST-shaped
 * status snapshots, and the service that implements it.
 *
 * @example
 * ```ts
 * import { BitTorrentEngine } from '../bittorrent/engine/index.js'
 * session.addService((deps) => new BitTorrentEngine(deps), { readableState: 'Starting libtorrent...' })
 * ```
 */

export { type AnonymousIdentity, AnonymousTransport } from './anonymous.js'
export {
  BitTorrentEngine,
  type EngineDeps,
  type EngineOptions,
  MAX_PENDING_INCOMING,
  torrentFileOf,
} from './engine.js'
export { type DownloadRecord, ENGINE_MIGRATIONS } from './persistence.js'
export {
  type AddDownloadOptions,
  type AddDownloadResult,
  DOWNLOAD_MANAGER_SERVICE,
  DOWNLOAD_STATES,
  type DownloadEvents,
  type DownloadHandle,
  type DownloadManager,
  type DownloadSource,
  type DownloadState,
  type DownloadStatus,
  EngineError,
  type EngineErrorCode,
  type FileStatus,
  isDownloadManager,
  PEER_ID_PREFIX,
  type PeerStatus,
  type RateLimits,
  type TrackerStatusEntry,
} from './types.js'
