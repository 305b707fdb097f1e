/**
 * The BitTorrent engine as the rest of the core sees it: a {@link DownloadManager} of downloads with REST-shaped
 * status snapshots.
 */
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
  type PeerStatus,
  type TrackerStatusEntry,
} from './types.js'
