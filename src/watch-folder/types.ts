import type { DownloadManager } from '../bittorrent/engine/index.js'
import type { ServiceDeps } from '../session/index.js'

/** The name the watch folder service registers under. */
export const WATCH_FOLDER_SERVICE = 'watch_folder'

/** How often the folder is scanned. */
export const WATCH_FOLDER_INTERVAL_MS = 5_000

/** What the watch folder uses of the session. */
export type WatchFolderDeps = Pick<ServiceDeps, 'config' | 'store' | 'events' | 'logger' | 'clock'>

/** Options of the watch folder service. */
export interface WatchFolderOptions {
  /** The running download manager, looked up at every scan (the engine may start later or not at all). */
  readonly downloads: () => DownloadManager | undefined
  /** Scan interval; default {@link WATCH_FOLDER_INTERVAL_MS}. */
  readonly intervalMs?: number
}

/** What one scan did, by file path. */
export interface ScanResult {
  /** Started as new downloads. */
  readonly added: readonly string[]
  /** Their infohash was already downloading; recorded without adding. */
  readonly present: readonly string[]
  /** Not torrents: renamed to `<name>.corrupt` (or recorded when renaming failed) and reported. */
  readonly corrupt: readonly string[]
  /** The engine refused them; tried again when the file changes or after a restart. */
  readonly failed: readonly string[]
}
